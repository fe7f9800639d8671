// One Turbine in this process, wired to a FakeMarathon and real backends on 127.0.0.1.
import { DEFAULTS, type Options } from '../../src/config/options.js';
import { startTurbine, type Turbine } from '../../src/app.js';
import { startHttpBackend, startTcpBackend, type RunningBackend } from '../../src/demo/backends.js';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { silentLogger, type Logger } from '../../src/observability/logger.js';
import { freePort, get, settled, sumMetric, until } from './net.js';

export interface Harness {
  marathon: FakeMarathon;
  turbine: Turbine;
  backends: RunningBackend[];
  httpPort: number;
  appidPort: number;
  admin: string;
  httpBackend(name: string): Promise<RunningBackend>;
  tcpBackend(name: string): Promise<RunningBackend>;
  /** Waits until the live table satisfies `check`. */
  waitTable(check: (t: NonNullable<ReturnType<Turbine['table']>>) => boolean, what: string): Promise<void>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /**
   * Waits until the event stream is open and the full fetch at its opening is over: a test that
   * counts fetches starts from here (on a loaded machine the stream may open after the table is there).
   */
  streamSettled(): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(overrides: Partial<Options> = {}, marathon = new FakeMarathon(), logger: Logger = silentLogger()): Promise<Harness> {
  if (!marathon.port) await marathon.listen();
  const backends: RunningBackend[] = [];
  const options: Options = {
    ...DEFAULTS, bind: '127.0.0.1', httpPort: await freePort(), appidPort: await freePort(), adminPort: 0,
    group: ['external'], logLevel: 'silent', drainTimeout: 2, eventStallTimeout: 60, workers: 1, ...overrides,
    marathon: overrides.marathon ?? [marathon.url],
  };
  const turbine = await startTurbine(options, logger);
  const admin = `http://127.0.0.1:${turbine.adminPort}`;
  const harness: Harness = {
    marathon, turbine, backends, admin,
    httpPort: options.httpPort,
    appidPort: options.appidPort,
    async httpBackend(name) {
      const b = await startHttpBackend(name);
      backends.push(b);
      return b;
    },
    async tcpBackend(name) {
      const b = await startTcpBackend(name);
      backends.push(b);
      return b;
    },
    async waitTable(check, what) {
      await until(() => {
        const t = turbine.table();
        return t !== null && check(t);
      }, what);
    },
    async metric(name, labels = {}) {
      return sumMetric((await get(`${admin}/metrics`)).text, name, labels);
    },
    async streamSettled() {
      await until(() => marathon.streamCount() > 0, 'the event stream');
      await settled(() => marathon.requests.apps, "the full fetch at the stream's opening", 300);
    },
    async close() {
      await turbine.stop();
      await marathon.close();
      await Promise.all(backends.map((b) => b.stop()));
    },
  };
  return harness;
}

/** A Marathon app definition in the portDefinitions shape (Marathon 1.4+ host networking). */
export function app(id: string, servicePort: number, labels: Record<string, string>, extra: Record<string, unknown> = {}) {
  return { id, instances: 1, labels, portDefinitions: [{ port: servicePort, protocol: 'tcp', name: 'p0' }], ...extra };
}
