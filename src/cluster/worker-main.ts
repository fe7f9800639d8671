// A proxy worker process (--workers N): owns only the data plane. The primary sends it the setup,
// every routing table and active-check results; it reports counters, ejections, draining backends
// and listener state back twice a second, and drains and exits when told to stop.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { TrafficReporter, WorkerTable, type ToWorker, type FromWorker, type WorkerProcessReport } from './worker-messages.js';
import { Proxy } from '../proxy/proxy.js';

const REPORT_MS = 500;
let proxy: Proxy | null = null;
const table = new WorkerTable();
const traffic = new TrafficReporter();
let reporter: NodeJS.Timeout | null = null;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

function processReport(): WorkerProcessReport {
  const cpu = process.cpuUsage();
  const lagSeconds = loopDelay.count > 0 ? loopDelay.percentile(99) / 1e9 : 0;
  loopDelay.reset();
  return { pid: process.pid, cpuSeconds: (cpu.user + cpu.system) / 1e6, residentBytes: process.memoryUsage.rss(), eventLoopLagSeconds: lagSeconds };
}

function send(message: FromWorker): void {
  process.send?.(message);
}

function report(): FromWorker {
  const p = proxy!;
  const down: Record<string, string[]> = {};
  for (const s of p.current()?.services ?? []) {
    for (const b of s.backends) {
      const reasons = p.downReasons(b.address).filter((r) => r === 'ejected');
      if (reasons.length > 0) down[b.address] = reasons;
    }
  }
  return { type: 'report', process: processReport(), ...traffic.delta(p.traffic()), draining: p.drainingBackends(), down, listeners: p.listenerStatus() };
}

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'init': {
      const logger = pino({ level: message.logLevel, base: { name: 'turbine', worker: process.pid } });
      proxy = Proxy.create(message.setup, logger, false);
      try {
        await proxy.start();
      } catch (err) {
        send({ type: 'failed', message: (err as Error).message });
        process.exit(1);
      }
      reporter = setInterval(() => send(report()), REPORT_MS);
      send({ type: 'ready' });
      return;
    }
    case 'table':
    case 'delta': {
      const change = message.type === 'table' ? table.replace(message.table) : table.apply(message);
      const failures = await proxy!.apply(change);
      send({ type: 'applied', generation: change.table.generation, failures });
      return;
    }
    case 'active':
      proxy!.setActive(message.address, message.up);
      return;
    case 'routable':
      proxy!.setRoutable(message.addresses);
      return;
    case 'stop':
      if (reporter) clearInterval(reporter);
      await proxy?.stop(message.drainMs);
      if (proxy) send(report());
      process.exit(0);
  }
}

process.on('message', (message: ToWorker) => void handle(message));
send({ type: 'hello' });
// The primary is gone: nobody will send tables or collect counters; stop serving.
process.on('disconnect', () => process.exit(0));
// Ctrl-C and a signal to the process group reach workers too; the primary orchestrates the drain
// and the resyncs. Left to Node, SIGHUP would end a worker with its requests in flight, and SIGUSR1
// would open its inspector.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1'] as const) process.on(signal, () => {});
