// bench/scale: 1,000 apps x 10 tasks (10,000 backends, 1,000 service ports), or `--apps N`.
// Three rows are measured in this bench process, calling Turbine's modules directly (labelled
// "bench process"): decoding Marathon's answer, a full table build, and applying one task event
// (AppStore + incremental build). The others are measured against a Turbine process (CPU 0): its
// RSS once serving, the duration of a full resync (Marathon fetch + decode), and the events per
// second its control plane absorbs. `--smoke`: 100 apps.
import { readFileSync } from 'node:fs';
import { FakeMarathon } from '../src/demo/fake-marathon.js';
import { AppStore } from '../src/discovery/app-store.js';
import { decodeAppList, decodeEvent, type MarathonEvent } from '../src/marathon/decode.js';
import { TableBuilder, buildRoutingTable } from '../src/routing/builder.js';
import { sumMetric, until } from '../test/support/net.js';
import { median, startTurbineProcess, stop, table, waitForPort, writeResult } from './lib.js';

const smoke = process.argv.includes('--smoke');
const appsFlag = process.argv.indexOf('--apps');
const APPS = appsFlag > 0 ? Number(process.argv[appsFlag + 1]) : smoke ? 100 : 1000;
if (!Number.isInteger(APPS) || APPS < 1 || APPS > 40_000) {
  process.stderr.write('bench/scale: --apps N (1 to 40000: one service port each, from 22000)\n');
  process.exit(2);
}
const TASKS = 10;
const SERVICE_PORT = 22_000;
const ADMIN = 18_385;
const OPTIONS = { groups: ['bench'], strictMode: false, healthCheck: true };

function appJson(i: number) {
  return { id: `/scale-${i}`, labels: { HAPROXY_GROUP: 'bench', HAPROXY_0_VHOST: `app-${i}.example.com` }, portDefinitions: [{ port: SERVICE_PORT + i }] };
}

function tasks(i: number) {
  return Array.from({ length: TASKS }, (_, t) => ({ host: `10.${Math.floor(i / 250)}.${i % 250}.${t + 1}`, ports: [31000 + t] }));
}

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  return sumMetric(await (await fetch(`http://127.0.0.1:${ADMIN}/metrics`)).text(), name, labels);
}

/** Events Turbine has applied, from the health check's detail (cheap at any table size). */
async function eventsSeen(): Promise<number> {
  const health = await (await fetch(`http://127.0.0.1:${ADMIN}/_haproxy_health_check`)).json() as { marathon: { events: number } };
  return health.marathon.events;
}

function inProcess(marathonText: string) {
  const parses: number[] = [];
  for (let i = 0; i < 5; i += 1) {
    const t0 = performance.now();
    decodeAppList(JSON.parse(marathonText), []);
    parses.push(performance.now() - t0);
  }
  const apps = decodeAppList(JSON.parse(marathonText), []);
  const builds: number[] = [];
  for (let i = 0; i < 5; i += 1) {
    const t0 = performance.now();
    buildRoutingTable(apps, OPTIONS);
    builds.push(performance.now() - t0);
  }
  const store = new AppStore();
  store.replaceAll(apps);
  const builder = new TableBuilder(OPTIONS);
  builder.update(store, store.takeChanges(), 1);
  const applies: number[] = [];
  for (let n = 0; n < 1000; n += 1) {
    const event = decodeEvent({ eventType: 'status_update_event', appId: `/scale-${n % APPS}`, taskId: `scale-${n % APPS}.extra-${n}`,
      taskStatus: 'TASK_RUNNING', host: '10.200.0.1', ports: [32000 + (n % 1000)], timestamp: new Date(Date.now() + n).toISOString() }, null);
    const t0 = performance.now();
    store.applyTaskStatus(event as Extract<MarathonEvent, { type: 'status_update_event' }>);
    builder.update(store, store.takeChanges(), n + 2);
    applies.push(performance.now() - t0);
  }
  return { parseDecodeMs: median(parses), fullBuildMs: median(builds), applyEventMs: median(applies), applyEventP99Ms: [...applies].sort((a, b) => a - b)[Math.floor(applies.length * 0.99)]! };
}

async function main(): Promise<void> {
  const marathon = new FakeMarathon();
  await marathon.listen();
  for (let i = 0; i < APPS; i += 1) marathon.putApp(appJson(i), tasks(i), { silent: true });
  const body = await (await fetch(`${marathon.url}/v2/apps?embed=apps.tasks`)).text();
  const local = inProcess(body);

  const turbine = startTurbineProcess('0', marathon.url, ADMIN, 1);
  await waitForPort(ADMIN, 30_000);
  await until(async () => (await metric('turbine_routing_backends')) === APPS * TASKS, 'every backend in the table', 60_000);
  await waitForPort(SERVICE_PORT + APPS - 1, 30_000);
  await new Promise((r) => setTimeout(r, 1000));
  const rssMb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${turbine.pid}/status`, 'utf8'))![1]) / 1024;

  // Full resyncs on demand (marathon-lb's /_mlb_signal/hup); the duration Turbine measured itself.
  const [sum0, count0] = [await metric('turbine_marathon_fetch_duration_seconds_sum', { scope: 'full' }), await metric('turbine_marathon_fetch_duration_seconds_count', { scope: 'full' })];
  for (let i = 0; i < 5; i += 1) {
    const before = await metric('turbine_marathon_fetch_duration_seconds_count', { scope: 'full' });
    await fetch(`http://127.0.0.1:${ADMIN}/_mlb_signal/hup`);
    await until(async () => (await metric('turbine_marathon_fetch_duration_seconds_count', { scope: 'full' })) > before, 'a resync', 60_000);
  }
  const resyncMs = ((await metric('turbine_marathon_fetch_duration_seconds_sum', { scope: 'full' })) - sum0) /
    ((await metric('turbine_marathon_fetch_duration_seconds_count', { scope: 'full' })) - count0) * 1000;

  // Events per second: one burst of status updates written to the stream at once. Progress is read
  // from the health check's event count: a /metrics scrape of 10,000 backends every 10 ms would
  // load Turbine more than the events do.
  const burst = smoke ? 2000 : 20_000;
  const events0 = await eventsSeen();
  let text = '';
  for (let n = 0; n < burst; n += 1) {
    text += `event: status_update_event\ndata: ${JSON.stringify({ eventType: 'status_update_event', appId: `/scale-${n % APPS}`, taskId: `scale-${n % APPS}.burst-${n}`,
      taskStatus: n % 2 ? 'TASK_KILLED' : 'TASK_RUNNING', host: '10.201.0.1', ports: [33000 + (n % 1000)], timestamp: new Date(Date.now() + n).toISOString() })}\n\n`;
  }
  const t0 = performance.now();
  marathon.writeRaw(text);
  await until(async () => (await eventsSeen()) - events0 >= burst, 'the burst absorbed', 60_000);
  const eventsPerSecond = burst / ((performance.now() - t0) / 1000);

  await stop(turbine);
  await marathon.close();
  const rows: (string | number)[][] = [
    ['apps x tasks (backends)', `${APPS} x ${TASKS} (${APPS * TASKS})`, ''],
    ['Turbine RSS once serving, MB', rssMb, 'target <= 150'],
    ['full resync: fetch + decode, ms (Turbine, mean of 5)', resyncMs, `target <= 100; includes the fake Marathon writing ${(body.length / 1e6).toFixed(1)} MB`],
    ['  of which parsing and decoding the answer, ms (bench process, median of 5)', local.parseDecodeMs, 'Turbine\'s decoder called in the bench process'],
    ['full table build from scratch, ms (bench process, median of 5)', local.fullBuildMs, 'Turbine\'s table builder called in the bench process'],
    ['one task event: apply + incremental build, ms (bench process, median / p99 of 1000)', `${local.applyEventMs.toFixed(3)} / ${local.applyEventP99Ms.toFixed(3)}`, 'target <= 1; AppStore and builder called in the bench process'],
    ['events absorbed per second (Turbine, one burst)', eventsPerSecond, `burst of ${burst}`],
  ];
  process.stdout.write('\nscale\n\n' + table(['measure', 'value', 'note'], rows) + '\n');
  if (!smoke) {
    writeResult(appsFlag > 0 ? `scale-${APPS}-apps` : 'scale', { apps: APPS, tasks: TASKS, rssMb, resyncMs, ...local, eventsPerSecond });
  }
  process.exit(0);
}

main().catch((err: Error) => {
  process.stderr.write(`bench/scale: ${err.stack}\n`);
  process.exit(1);
});
