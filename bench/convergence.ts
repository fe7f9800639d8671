// bench/convergence: from the fake Marathon emitting TASK_RUNNING (TASK_KILLED) to the first
// (last) request reaching that backend, end to end, p50/p99 over N events, with 1, 100 and 1,000
// apps in Marathon (or `--apps N[,M...]`). Turbine runs in its own process: on CPU 0 with one
// process, on CPUs 0-1 with `--workers 2` (each worker can have a core); this process (the client,
// the fake Marathon and the backends) is pinned to CPU 1, so one clock times both ends. On a
// two-core machine the two-worker figures therefore share CPU 1 with the client: said in the output.
// A measurement that times out fails the run. `--smoke`: 10 events, 1 and 100 apps.
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { FakeMarathon, type FakeTask } from '../src/demo/fake-marathon.js';
import { percentile, startTurbineProcess, stop, table, waitForPort, writeResult } from './lib.js';

const smoke = process.argv.includes('--smoke');
const flag = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const WORKERS = Number(flag('--workers') ?? 1);
const EVENTS = smoke ? 10 : 100;
const APP_COUNTS = flag('--apps')?.split(',').map(Number) ?? (smoke ? [1, 100] : [1, 100, 1000]);
if (!Number.isInteger(WORKERS) || WORKERS < 1 || APP_COUNTS.some((n) => !Number.isInteger(n) || n < 1 || n > 40_000)) {
  process.stderr.write('bench/convergence: --workers N (>= 1) and --apps N[,M...] (1 to 40000)\n');
  process.exit(2);
}
const TURBINE_CPUS = WORKERS === 1 ? '0' : '0-1';
const CLIENT_CPU = '1';
const SERVICE_PORT = 21_000;
const ADMIN = 18_285;
/** Requests in a row that must reach other backends before a killed backend counts as out. */
const OUT_AFTER = 20;
const TIMEOUT_MS = 5000;

interface Probe {
  server: Server;
  port: number;
  hits: number[];
}

async function probeBackend(): Promise<Probe> {
  const hits: number[] = [];
  const server = createServer((_req, res) => {
    hits.push(performance.now());
    res.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, hits };
}

/** How many of `hits` (in time order) came after `t`, counting at most OUT_AFTER. */
function hitsSince(hits: number[], t: number): number {
  let n = 0;
  for (let i = hits.length - 1; i >= 0 && n < OUT_AFTER && hits[i]! > t; i -= 1) n += 1;
  return n;
}

/** Turbine's own histogram (event arrival to table serving): cumulative bucket counts by upper bound. */
async function convergenceBuckets(): Promise<Map<number, number>> {
  const text = await (await fetch(`http://127.0.0.1:${ADMIN}/metrics`)).text();
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^turbine_routing_convergence_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)) {
    out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  }
  return out;
}

/** The bucket upper bound (ms) below which `q` of the observations made between two readings fall. */
function bucketQuantile(before: Map<number, number>, after: Map<number, number>, q: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  for (const le of bounds) if ((after.get(le) ?? 0) - (before.get(le) ?? 0) >= q * total) return le * 1000;
  return Infinity;
}

async function measure(apps: number): Promise<{ up: number[]; down: number[]; insideP50: number; insideP99: number }> {
  const marathon = new FakeMarathon();
  await marathon.listen();
  const base = await probeBackend();
  marathon.putApp({ id: '/measured', labels: { HAPROXY_GROUP: 'bench', HAPROXY_0_MODE: 'http' }, portDefinitions: [{ port: SERVICE_PORT }] },
    [{ host: '127.0.0.1', ports: [base.port] }], { silent: true });
  for (let i = 1; i < apps; i += 1) {
    marathon.putApp({ id: `/other-${i}`, labels: { HAPROXY_GROUP: 'bench' }, portDefinitions: [{ port: SERVICE_PORT + i }] },
      [{ host: '127.0.0.1', ports: [base.port] }], { silent: true });
  }
  const turbine = startTurbineProcess(TURBINE_CPUS, marathon.url, ADMIN, WORKERS);
  await waitForPort(SERVICE_PORT, 30_000);
  if (apps > 1) await waitForPort(SERVICE_PORT + apps - 1, 30_000);

  // A steady client: 4 keep-alive connections, one request at a time each.
  const pool = new Pool(`http://127.0.0.1:${SERVICE_PORT}`, { connections: 4 });
  let running = true;
  const clients = Array.from({ length: 4 }, async () => {
    while (running) {
      const res = await pool.request({ path: '/', method: 'GET' }).catch(() => null);
      await res?.body.text().catch(() => '');
    }
  });
  const probes = await Promise.all(Array.from({ length: EVENTS }, () => probeBackend()));
  const bucketsBefore = await convergenceBuckets();
  const up: number[] = [];
  const down: number[] = [];
  const waitFor = async (done: () => boolean, what: string) => {
    const since = performance.now();
    while (!done()) {
      if (performance.now() - since > TIMEOUT_MS) throw new Error(`${apps} apps: no ${what} within ${TIMEOUT_MS} ms`);
      await new Promise((r) => setImmediate(r));
    }
  };
  for (const probe of probes) {
    const emittedAt = performance.now();
    const task: FakeTask = marathon.startTask('/measured', { host: '127.0.0.1', ports: [probe.port] }, { stages: false });
    await waitFor(() => probe.hits.length > 0, 'request at the new task');
    up.push(probe.hits[0]! - emittedAt);
    await waitFor(() => probe.hits.length >= 2, 'second request at the new task'); // it is in the rotation
    const killedAt = performance.now();
    marathon.killTask(task.id, { events: 'killed-only' });
    // Out of the rotation once OUT_AFTER requests in a row went to the other backend: then the
    // probe's last hit is the last request it got. Before the event (negative) when none came after.
    await waitFor(() => hitsSince(base.hits, probe.hits[probe.hits.length - 1]!) >= OUT_AFTER, `${OUT_AFTER} requests elsewhere after the kill`);
    down.push(probe.hits[probe.hits.length - 1]! - killedAt);
  }
  const bucketsAfter = await convergenceBuckets();
  running = false;
  await Promise.all(clients);
  await pool.close();
  await stop(turbine);
  await marathon.close();
  for (const p of [base, ...probes]) { p.server.closeAllConnections(); p.server.close(); }
  return { up, down, insideP50: bucketQuantile(bucketsBefore, bucketsAfter, 0.5), insideP99: bucketQuantile(bucketsBefore, bucketsAfter, 0.99) };
}

async function main(): Promise<void> {
  // Every thread of this process (the client, the fake Marathon, the backends) on CLIENT_CPU.
  const pinned = spawnSync('taskset', ['-a', '-p', '-c', CLIENT_CPU, String(process.pid)], { encoding: 'utf8' });
  if (pinned.status !== 0) throw new Error(`cannot pin the bench to CPU ${CLIENT_CPU}: ${pinned.stderr || pinned.error?.message}`);
  const rows: (string | number)[][] = [];
  const results: Record<number, Record<string, number>> = {};
  for (const apps of APP_COUNTS) {
    const { up, down, insideP50, insideP99 } = await measure(apps);
    const r = { upP50: percentile(up, 0.5), upP99: percentile(up, 0.99), downP50: percentile(down, 0.5), downP99: percentile(down, 0.99), insideP50, insideP99 };
    results[apps] = r;
    rows.push([String(apps), String(EVENTS), r.upP50, r.upP99, r.downP50, r.downP99, `<= ${r.insideP50}`, `<= ${r.insideP99}`]);
  }
  process.stdout.write(`\nconvergence (--workers ${WORKERS}): event emitted by the fake Marathon -> first request at the new backend (TASK_RUNNING), last request at the killed one (TASK_KILLED), ms\n`);
  process.stdout.write(`(client at 4 concurrent keep-alive requests; Turbine on CPU ${TURBINE_CPUS}; client, Marathon and backends on CPU ${CLIENT_CPU}${WORKERS > 1 ? ', shared with a worker' : ''})\n\n`);
  process.stdout.write(table(['apps', 'events', 'TASK_RUNNING p50', 'p99', 'TASK_KILLED p50', 'p99', 'inside Turbine p50', 'p99'], rows) + '\n');
  process.stdout.write(`(TASK_KILLED: the last request the killed backend served, once ${OUT_AFTER} in a row went elsewhere; negative: none came after the event)\n`);
  process.stdout.write('(inside Turbine: event arrival to new table serving, from turbine_routing_convergence_seconds; bucket upper bounds)\n');
  if (!smoke) {
    const name = ['convergence', ...(flag('--apps') ? [`${APP_COUNTS.join('-')}-apps`] : []), ...(WORKERS === 1 ? [] : [`${WORKERS}-workers`])].join('-');
    writeResult(name, { workers: WORKERS, events: EVENTS, results });
  }
  process.exit(0);
}

main().catch((err: Error) => {
  process.stderr.write(`bench/convergence: ${err.stack}\n`);
  process.exit(1);
});
