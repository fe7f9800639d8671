// `npm run demo` (or `turbine demo`): a fake Marathon with sample apps, real backend
// servers and Turbine, in one process tree; prints curl commands that show routing; Ctrl-C stops.
import type { Options } from '../config/options.js';
import { startTurbine, type Turbine } from '../app.js';
import { installSignals } from '../signals.js';
import { startHttpBackend, startTcpBackend, type RunningBackend } from './backends.js';
import { FakeMarathon } from './fake-marathon.js';

/** Where the demo listens and what it serves unless a flag (or the environment, or --config) says otherwise. */
const DEMO_DEFAULTS: Partial<Options> = { bind: '127.0.0.1', httpPort: 8080, adminPort: 9090, appidPort: 9091, group: ['external'] };

/** `given`: the options the user set, which win over the demo's own; Marathon is always the demo's. */
export async function runDemo(given: Options, explicit: ReadonlySet<keyof Options>): Promise<void> {
  const backends: RunningBackend[] = [];
  let counter = 0;
  const marathon = new FakeMarathon({
    launcher: async (appId) => {
      counter += 1;
      const b = appId === '/echo' ? await startTcpBackend(`echo-${counter}`) : await startHttpBackend(`${appId.slice(1)}-${counter}`);
      backends.push(b);
      return { host: b.host, ports: [b.port], stop: b.stop };
    },
  });
  const marathonPort = await marathon.listen(Number(process.env.DEMO_MARATHON_PORT ?? 8070));
  // Sample apps in the shapes of the fixtures: an HTTP app with a virtual host, a TCP app, and an
  // app of another group that this instance must not serve.
  marathon.putApp({
    id: '/web', instances: 2, labels: { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'web.example.com' },
    portDefinitions: [{ port: 10000, protocol: 'tcp', name: 'http' }],
    healthChecks: [{ protocol: 'HTTP', path: '/health', portIndex: 0, intervalSeconds: 5, timeoutSeconds: 2, maxConsecutiveFailures: 3, gracePeriodSeconds: 10 }],
  });
  marathon.putApp({ id: '/echo', instances: 1, labels: { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'tcp' }, portDefinitions: [{ port: 10001, protocol: 'tcp' }] });
  marathon.putApp({ id: '/billing', instances: 1, labels: { HAPROXY_GROUP: 'internal' }, portDefinitions: [{ port: 10002, protocol: 'tcp' }] });
  await marathon.scale('/web', 2);
  await marathon.scale('/echo', 1);
  await marathon.scale('/billing', 1);

  // Never the production state file: a Turbine started from it while Marathon is down would serve the demo's apps.
  const options: Options = { ...given, marathon: [marathon.url], stateFile: null };
  for (const [key, value] of Object.entries(DEMO_DEFAULTS) as [keyof Options, never][]) if (!explicit.has(key)) options[key] = value;
  let started: Turbine | null = null;
  installSignals(() => started, 0);
  const turbine = started = await startTurbine(options);
  const stopDemo = async () => {
    await marathon.close();
    await Promise.all(backends.map((b) => b.stop()));
  };
  process.once('exit', () => void stopDemo());
  await turbine.nextTable();
  const m = `http://127.0.0.1:${marathonPort}`;
  process.stderr.write(`
Turbine demo is running (fake Marathon at ${m}, group "external"). Try:

  curl -s localhost:10000/hello                    # service port 10000 -> the /web tasks, round robin
  curl -s -H 'Host: web.example.com' localhost:${options.httpPort}/   # virtual host on the HTTP port
  curl -s -H 'X-Marathon-App-Id: /web' localhost:${options.appidPort}/   # by app id (marathon-lb's 9091)
  printf 'ping' | nc -w1 localhost 10001           # TCP service port -> the /echo task
  curl -s localhost:10002                          # /billing is group "internal": not served
  curl -s localhost:${options.adminPort}/routes                   # the routing table
  http://localhost:${options.adminPort}/                            # status page (open it in a browser)

Change Marathon and watch the routes follow:
  curl -s -XPOST ${m}/_control/apps/web/scale -d '{"instances":4}'
  curl -s ${m}/_control/apps/web/tasks
  curl -s -XPOST ${m}/_control/tasks/TASK_ID/kill
  curl -s -XPOST ${m}/_control/tasks/TASK_ID/health -d '{"alive":false}'
  curl -s -XPOST ${m}/_control/stream/drop

Ctrl-C stops everything.
`);
}
