// npm run bench: Turbine against HAProxy, nginx and Caddy in the same run, on the same machine, same
// backends (nginx with one worker for bodies, a small Node WebSocket echo server), same pinning;
// runs alternate between the proxies for several rounds; medians, and each proxy's ratio to HAProxy
// taken round by round (HAProxy and Turbine measured back to back), then the median of those.
// Then a slow reader downloads 1 GiB through HAProxy and Turbine, and their memory growth is shown.
// Prints the tables and writes bench/results/throughput.json. `--smoke`: one short round and a
// 64 MiB download, to prove the harness works (CI); `--slow-mib N` sets the download's size.
// Needs Debian's nginx-light, haproxy, caddy, wrk and openssl. A full run (5 rounds of 5 s) takes
// about 15 minutes; it prints its estimate first.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { FakeMarathon } from '../src/demo/fake-marathon.js';
import { HUGE_BYTES, formatNumber, have, median, medianRatio, rssBytes, roundOrder, runBenchProgram, selfSignedCertificate, start, startNginx, stop, table, waitForPort, wrk, type WrkResult, writeResult } from './lib.js';
import { LABELS, PORTS, PROXY_NAMES, startProxy, type Certificate, type Protocol, type ProxyName, type RunningProxy, type Upstreams } from './proxies.js';

const args = process.argv.slice(2);
const smoke = args.includes('--smoke');
const rounds = smoke ? 1 : Number(args[args.indexOf('--rounds') + 1] ?? 5) || 5;
const seconds = smoke ? 1 : Number(args[args.indexOf('--seconds') + 1] ?? 5) || 5;
const connections = 50;
const MiB = 1024 * 1024;
const WS_MESSAGE_BYTES = 64;
/** The slow reader's pace, and what it downloads. */
const SLOW_MIB_PER_S = 64;
const SLOW_BYTES = Math.min(HUGE_BYTES, (Number(args[args.indexOf('--slow-mib') + 1] ?? NaN) || (smoke ? 64 : 1024)) * MiB);
/** The proxies whose memory the slow reader watches. */
const SLOW_PROXIES: ProxyName[] = ['haproxy', 'turbine'];
/** The issue's target for Turbine's memory growth under a slow reader. */
const SLOW_TARGET_MIB = 32;

const UPSTREAMS: Upstreams = { web: 18180, ws: 18190 };

interface Config {
  /** Turbine --workers, HAProxy nbthread, nginx worker_processes, Caddy GOMAXPROCS. */
  workers: number;
  proxyCpus: string;
  loadCpus: string;
  scenarios: Scenario[];
}

interface Scenario {
  name: string;
  path: string;
  protocol: Protocol;
  headers?: string[];
  unit: 'rps' | 'MB/s' | 'msg/s';
}

const SCENARIOS: Scenario[] = [
  { name: 'HTTP keep-alive, 100 B body', path: '/small', protocol: 'http', unit: 'rps' },
  { name: 'HTTP keep-alive, 64 KiB body', path: '/large', protocol: 'http', unit: 'rps' },
  { name: 'HTTP, new connection per request', path: '/small', protocol: 'http', headers: ['Connection: close'], unit: 'rps' },
  { name: 'TCP mode, 64 KiB responses', path: '/large', protocol: 'tcp', unit: 'MB/s' },
  // Turbine serves HTTPS on its virtual-host listener, by the name the TLS handshake gives (SNI), as
  // marathon-lb does; wrk sends the URL's host as SNI, so the URL names the host (measure()).
  { name: 'HTTPS (TLS 1.3) keep-alive, 100 B body', path: '/small', protocol: 'https', unit: 'rps' },
  { name: `WebSocket echo, ${WS_MESSAGE_BYTES} B messages`, path: '', protocol: 'ws', unit: 'msg/s' },
];

interface Measured { value: number; p50ms: number; p99ms: number; errors: number }
interface Row {
  scenario: string;
  unit: string;
  workers: number;
  pinning: string;
  /** Per proxy; absent where the proxy has no such mode (Caddy and nginx-light: TCP). */
  results: Partial<Record<ProxyName, Measured>>;
  /** Each proxy's value over HAProxy's in the same round, median over the rounds. */
  ratios: Partial<Record<ProxyName, number>>;
  /** Each proxy's p99 over HAProxy's in the same round, median over the rounds. */
  p99Ratios: Partial<Record<ProxyName, number>>;
}
interface SlowReaderRow { proxy: ProxyName; bytes: number; mibPerSecond: number; rssBeforeMiB: number; rssPeakMiB: number; growthMiB: number }

function version(command: string, flag: string): string {
  const r = spawnSync(command, [flag], { encoding: 'utf8' });
  return (r.stdout + r.stderr).split('\n')[0]!.trim();
}

/** One measurement: wrk for HTTP, HTTPS and TCP; the bench's WebSocket client for messages. Null where the proxy has no such port. */
async function measure(config: Config, proxy: RunningProxy, s: Scenario): Promise<WrkResult | null> {
  const port = proxy.port(s.protocol);
  if (port === null) return null;
  if (s.protocol === 'ws') {
    const r = await runBenchProgram<{ messages: number; seconds: number; p50ms: number; p99ms: number; errors: number }>(
      config.loadCpus, 'websocket', ['client', port, connections, seconds, WS_MESSAGE_BYTES], (seconds + 30) * 1000);
    return { rps: r.messages / r.seconds, mbPerSec: NaN, p50ms: r.p50ms, p99ms: r.p99ms, errors: r.errors };
  }
  // An address as the URL's host would be the SNI too, which names no virtual host (Turbine answers 421).
  const authority = s.protocol === 'https' ? `localhost:${port}` : `127.0.0.1:${port}`;
  return wrk(config.loadCpus, `${s.protocol === 'https' ? 'https' : 'http'}://${authority}${s.path}`, seconds, connections, s.headers);
}

/** A slow download through `proxy`, sampling the proxy's resident memory (one process: --workers 1, nbthread 1). */
async function slowReader(config: Config, proxy: RunningProxy): Promise<SlowReaderRow> {
  const pid = proxy.child.pid!;
  const before = rssBytes(pid);
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, rssBytes(pid)); }, 50);
  try {
    const r = await runBenchProgram<{ bytes: number; seconds: number }>(config.loadCpus, 'slow-reader',
      [proxy.port('http')!, '/huge', SLOW_BYTES, SLOW_MIB_PER_S], (SLOW_BYTES / (SLOW_MIB_PER_S * MiB) + 60) * 1000);
    peak = Math.max(peak, rssBytes(pid));
    return { proxy: proxy.name, bytes: r.bytes, mibPerSecond: r.bytes / MiB / r.seconds, rssBeforeMiB: before / MiB, rssPeakMiB: peak / MiB, growthMiB: (peak - before) / MiB };
  } finally {
    clearInterval(sampler);
  }
}

/**
 * HAProxy and Turbine side by side in the measuring order: this machine's speed shifts between
 * runs (HAProxy's 100 B rate at 29,000 or 40,000 req/s from one run to the next), so the two are
 * measured back to back and compared within each round.
 */
const MEASURING_ORDER: readonly ProxyName[] = ['haproxy', 'turbine', 'nginx', 'caddy'];

/** The median over the rounds of `name`'s `f` over HAProxy's in the same round. */
function roundRatio(list: Partial<Record<ProxyName, WrkResult[]>>, name: ProxyName, f: (r: WrkResult) => number): number | undefined {
  const mine = list[name];
  const base = list.haproxy;
  return mine === undefined || base === undefined ? undefined : medianRatio(mine, base, f);
}

/** One configuration: every proxy started with the same thread/worker count and pinning. */
async function runConfig(config: Config, marathonUrl: string, cert: Certificate, rows: Row[], slow: SlowReaderRow[]): Promise<void> {
  const proxies = MEASURING_ORDER.map((name) => startProxy(name, config.proxyCpus, config.workers, UPSTREAMS, cert, marathonUrl));
  try {
    const ports = proxies.flatMap((p) => (['http', 'tcp', 'https', 'ws'] as const).map((protocol) => p.port(protocol))).filter((p): p is number => p !== null);
    await Promise.all(ports.map((p) => waitForPort(p, 20_000)));
    if (!smoke) {
      for (const p of proxies) await wrk(config.loadCpus, `http://127.0.0.1:${p.port('http')}/small`, 3, connections); // warm-up (JIT, pools)
    }
    const runs: Record<string, Partial<Record<ProxyName, WrkResult[]>>> = {};
    for (let round = 0; round < rounds; round += 1) {
      for (const scenario of config.scenarios) {
        for (const p of roundOrder(proxies, round)) {
          const r = await measure(config, p, scenario);
          if (r !== null) ((runs[scenario.name] ??= {})[p.name] ??= []).push(r);
        }
      }
    }
    for (const s of config.scenarios) {
      const results: Partial<Record<ProxyName, Measured>> = {};
      for (const name of PROXY_NAMES) {
        const list = runs[s.name]?.[name];
        if (list === undefined) continue;
        const m = (f: keyof WrkResult) => median(list.map((r) => r[f]));
        results[name] = { value: s.unit === 'MB/s' ? m('mbPerSec') : m('rps'), p50ms: m('p50ms'), p99ms: m('p99ms'), errors: list.reduce((n, r) => n + r.errors, 0) };
      }
      const value = (r: WrkResult) => (s.unit === 'MB/s' ? r.mbPerSec : r.rps);
      const ratios: Partial<Record<ProxyName, number>> = {};
      const p99Ratios: Partial<Record<ProxyName, number>> = {};
      for (const name of PROXY_NAMES) {
        const list = runs[s.name] ?? {};
        const ratio = roundRatio(list, name, value);
        if (ratio !== undefined) ratios[name] = ratio;
        const p99 = roundRatio(list, name, (r) => r.p99ms);
        if (p99 !== undefined) p99Ratios[name] = p99;
      }
      rows.push({ scenario: s.name, unit: s.unit, workers: config.workers, pinning: `proxy CPU ${config.proxyCpus}, load CPU ${config.loadCpus}, backends CPU 1`, results, ratios, p99Ratios });
    }
    if (config.workers === 1) {
      for (const p of proxies) if (SLOW_PROXIES.includes(p.name)) slow.push(await slowReader(config, p));
    }
  } finally {
    await Promise.all(proxies.map((p) => stop(p.child)));
  }
}

/** Roughly how long the run takes: each measurement, the warm-ups, the slow downloads. */
function estimateSeconds(configs: Config[]): number {
  let total = 0;
  for (const c of configs) {
    const measurements = c.scenarios.reduce((n, s) => n + (s.protocol === 'tcp' ? 2 : PROXY_NAMES.length), 0);
    total += rounds * measurements * (seconds + 1) + (smoke ? 0 : PROXY_NAMES.length * 4);
  }
  return total + SLOW_PROXIES.length * SLOW_BYTES / (SLOW_MIB_PER_S * MiB) + 10;
}

async function main(): Promise<void> {
  const packages: Record<string, string> = { nginx: 'nginx-light', haproxy: 'haproxy', caddy: 'caddy', wrk: 'wrk', openssl: 'openssl', taskset: 'util-linux' };
  const missing = Object.keys(packages).filter((c) => !have(c));
  if (missing.length > 0) {
    process.stderr.write(`bench: needs ${missing.join(', ')} (apt-get install -y ${missing.map((c) => packages[c]).join(' ')})\n`);
    process.exit(2);
  }
  // Two cores: with one worker the proxy under test gets CPU 0 to itself and the load generator and
  // the backends share CPU 1; with two, everything shares both cores (said in the table).
  const configs: Config[] = [
    { workers: 1, proxyCpus: '0', loadCpus: '1', scenarios: SCENARIOS },
    { workers: 2, proxyCpus: '0-1', loadCpus: '0-1', scenarios: [SCENARIOS[0]!] },
  ];
  process.stderr.write(`bench: about ${Math.ceil(estimateSeconds(configs) / 60)} min (${rounds} round(s) of ${seconds} s)\n`);
  const cert = selfSignedCertificate();
  const backends: ChildProcess[] = [
    startNginx('1', UPSTREAMS.web),
    start('1', process.execPath, [join(import.meta.dirname, 'websocket.js'), 'server', String(UPSTREAMS.ws)]),
  ];
  const marathon = new FakeMarathon();
  await marathon.listen();
  const turbineApp = (id: string, mode: string, port: number, upstream: number, labels: Record<string, string> = {}) =>
    marathon.putApp({ id, labels: { HAPROXY_GROUP: 'bench', HAPROXY_0_MODE: mode, ...labels }, portDefinitions: [{ port }] }, [{ host: '127.0.0.1', ports: [upstream] }]);
  turbineApp('/bench-http', 'http', PORTS.turbine.http, UPSTREAMS.web, { HAPROXY_0_VHOST: 'bench.local,localhost' });
  turbineApp('/bench-tcp', 'tcp', PORTS.turbine.tcp, UPSTREAMS.web);
  turbineApp('/bench-ws', 'http', PORTS.turbine.ws, UPSTREAMS.ws);
  await Promise.all([waitForPort(UPSTREAMS.web), waitForPort(UPSTREAMS.ws)]);
  const rows: Row[] = [];
  const slow: SlowReaderRow[] = [];
  for (const config of configs) await runConfig(config, marathon.url, cert, rows, slow);

  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version,
    haproxy: version('haproxy', '-v'), nginx: version('nginx', '-v'), caddy: version('caddy', 'version'), date: new Date().toISOString(),
  };
  const out = (text: string) => process.stdout.write(text + '\n');
  out(`\n${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.haproxy}, ${machine.nginx}, Caddy ${machine.caddy}`);
  out(`${connections} connections; ${rounds} round(s) of ${seconds} s, the proxies alternating; medians, and ratios to HAProxy within each round (median over rounds). Backends: nginx (one worker) and a Node WebSocket echo server, CPU 1.`);
  out('workers 1: proxy CPU 0, wrk CPU 1; workers 2: proxy and wrk on CPU 0-1. – : the proxy has no such mode here.\n');
  const has = (r: Row, p: ProxyName) => r.results[p] !== undefined;
  out(table(['scenario', 'workers', 'unit', ...PROXY_NAMES.map((p) => LABELS[p]), ...PROXY_NAMES.slice(1).map((p) => `${LABELS[p]}/HAProxy`), 'errors H/N/C/T'],
    rows.map((r) => [r.scenario, String(r.workers), r.unit, ...PROXY_NAMES.map((p) => r.results[p]?.value ?? NaN),
      ...PROXY_NAMES.slice(1).map((p) => (has(r, p) ? `${r.ratios[p]!.toFixed(2)}x` : '–')),
      PROXY_NAMES.map((p) => (has(r, p) ? String(r.results[p]!.errors) : '–')).join('/')])));
  out('\nLatency, ms (p50 / p99), and p99 over HAProxy\'s:\n');
  out(table(['scenario', 'workers', ...PROXY_NAMES.map((p) => LABELS[p]), ...PROXY_NAMES.slice(1).map((p) => `${LABELS[p]} p99/HAProxy`)],
    rows.map((r) => [r.scenario, String(r.workers), ...PROXY_NAMES.map((p) => (has(r, p) ? `${formatNumber(r.results[p]!.p50ms)} / ${formatNumber(r.results[p]!.p99ms)}` : '–')),
      ...PROXY_NAMES.slice(1).map((p) => (has(r, p) ? `${r.p99Ratios[p]!.toFixed(2)}x` : '–'))])));
  out(`\nSlow reader: ${SLOW_BYTES / MiB} MiB from nginx through the proxy (workers 1), read at up to ${SLOW_MIB_PER_S} MiB/s; the proxy's RSS, MiB (Turbine's target: growth < ${SLOW_TARGET_MIB} MiB):\n`);
  out(table(['proxy', 'MiB read', 'MiB/s', 'RSS before', 'RSS peak', 'growth'],
    slow.map((s) => [`slow reader through ${LABELS[s.proxy]}`, s.bytes / MiB, s.mibPerSecond, s.rssBeforeMiB, s.rssPeakMiB, s.growthMiB])));
  const first = SCENARIOS[0]!.name;
  const scaling = Object.fromEntries(PROXY_NAMES.map((p) => {
    const one = rows.find((r) => r.workers === 1 && r.scenario === first)?.results[p]?.value ?? NaN;
    const two = rows.find((r) => r.workers === 2 && r.scenario === first)?.results[p]?.value ?? NaN;
    return [p, two / one];
  })) as Record<ProxyName, number>;
  out(`\n2 workers / 1 (${first}): ${PROXY_NAMES.map((p) => `${LABELS[p]} ${scaling[p].toFixed(2)}x`).join(', ')}`);
  if (!smoke) writeResult('throughput', { machine, connections, rounds, seconds, rows, slowReader: slow, scaling });
  await Promise.all(backends.map((b) => stop(b)));
  await marathon.close();
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(1);
});
