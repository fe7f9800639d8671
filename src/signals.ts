// Process signals, handled from before Turbine starts: SIGTERM/SIGINT report unhealthy, keep
// serving for the shutdown grace, drain and exit 0 (during start-up, with nothing served yet, they
// exit 0 at once); SIGHUP and SIGUSR1 resync, as marathon-lb's reload signals (during start-up the
// first fetch is a full one anyway). Left to Node, SIGHUP would end the process and SIGUSR1 would
// open its inspector, which runs any code it is sent, on 127.0.0.1:9229.
import type { Turbine } from './app.js';

/** `running()`: the started Turbine, or null while it starts. */
export function installSignals(running: () => Turbine | null, shutdownGraceMs: number): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const turbine = running();
    if (turbine === null) {
      process.stderr.write(`turbine: ${signal} during start-up: exiting\n`);
      process.exit(0);
    }
    turbine.logger.info({ signal, graceSeconds: shutdownGraceMs / 1000 }, 'shutting down: health check answers 503; serving through the grace period, then draining');
    turbine.stop(shutdownGraceMs).then(() => process.exit(0), (err: Error) => {
      turbine.logger.error({ err: err.message }, 'shutdown failed');
      process.exit(1);
    });
  };
  const resync = (signal: string) => {
    const turbine = running();
    if (turbine === null) return;
    turbine.logger.info({ signal }, 'full resync from Marathon');
    void turbine.sync.requestResync();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => resync('SIGHUP'));
  process.on('SIGUSR1', () => resync('SIGUSR1'));
}
