// Process signals for a running Turbine: SIGTERM/SIGINT report unhealthy, keep serving for the
// shutdown grace, drain and exit 0; SIGHUP resyncs.
import type { Turbine } from './app.js';

export function installSignals(turbine: Turbine, shutdownGraceMs: number): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    turbine.logger.info({ signal, graceSeconds: shutdownGraceMs / 1000 }, 'shutting down: health check answers 503; serving through the grace period, then draining');
    turbine.stop(shutdownGraceMs).then(() => process.exit(0), (err: Error) => {
      turbine.logger.error({ err: err.message }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    turbine.logger.info('SIGHUP: full resync from Marathon');
    void turbine.sync.requestResync();
  });
}
