// npm run bench: Turbine against HAProxy in the same run, on the same machine, same backend (nginx,
// one worker), same pinning, runs alternating HAProxy/Turbine for several rounds; medians.
// Prints one table and writes bench/results/throughput.json. `--smoke`: one short round, to prove
// the harness works (CI). Needs Debian's nginx, haproxy and wrk.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { FakeMarathon } from '../src/demo/fake-marathon.js';
import { have, median, start, startNginx, startTurbineProcess, stop, table, waitForPort, workdir, wrk, type WrkResult, writeResult } from './lib.js';

const args = process.argv.slice(2);
const smoke = args.includes('--smoke');
const rounds = smoke ? 1 : Number(args[args.indexOf('--rounds') + 1] ?? 3) || 3;
const seconds = smoke ? 1 : Number(args[args.indexOf('--seconds') + 1] ?? 8) || 8;
const connections = 50;

const PORTS = { nginx: 18180, haproxyHttp: 18181, haproxyTcp: 18182, turbineHttp: 18183, turbineTcp: 18184, admin: 18185, vhost: 18186, appid: 18187 };

interface Config {
  /** Turbine --workers and HAProxy nbthread. */
  workers: number;
  proxyCpus: string;
  loadCpus: string;
  scenarios: Scenario[];
}

interface Scenario {
  name: string;
  path: string;
  protocol: 'http' | 'tcp';
  headers?: string[];
  unit: 'rps' | 'MB/s';
}

const SCENARIOS: Scenario[] = [
  { name: 'HTTP keep-alive, 100 B body', path: '/small', protocol: 'http', unit: 'rps' },
  { name: 'HTTP keep-alive, 64 KiB body', path: '/large', protocol: 'http', unit: 'rps' },
  { name: 'HTTP, new connection per request', path: '/small', protocol: 'http', headers: ['Connection: close'], unit: 'rps' },
  { name: 'TCP mode, 64 KiB responses', path: '/large', protocol: 'tcp', unit: 'MB/s' },
];

function haproxyConfig(threads: number): string {
  return `global
  nbthread ${threads}
  maxconn 8000
defaults
  timeout connect 3s
  timeout client 30s
  timeout server 30s
  timeout tunnel 3600s
frontend http_in
  mode http
  bind 127.0.0.1:${PORTS.haproxyHttp}
  option forwardfor
  default_backend http_nginx
backend http_nginx
  mode http
  http-reuse safe
  server s1 127.0.0.1:${PORTS.nginx}
frontend tcp_in
  mode tcp
  bind 127.0.0.1:${PORTS.haproxyTcp}
  default_backend tcp_nginx
backend tcp_nginx
  mode tcp
  server s1 127.0.0.1:${PORTS.nginx}
`;
}

function version(command: string, flag: string): string {
  const r = spawnSync(command, [flag], { encoding: 'utf8' });
  return (r.stdout + r.stderr).split('\n')[0]!.trim();
}

/** One configuration: HAProxy and Turbine started with the same thread/worker count and pinning. */
async function runConfig(config: Config, marathonUrl: string, results: Row[]): Promise<void> {
  const haproxyCfg = join(workdir, `haproxy-${config.workers}.cfg`);
  writeFileSync(haproxyCfg, haproxyConfig(config.workers));
  const haproxy = start(config.proxyCpus, 'haproxy', ['-f', haproxyCfg, '-db']);
  const turbine = startTurbineProcess(config.proxyCpus, marathonUrl, PORTS.admin, config.workers);
  await Promise.all([PORTS.haproxyHttp, PORTS.haproxyTcp, PORTS.turbineHttp, PORTS.turbineTcp].map((p) => waitForPort(p, 20_000)));
  const proxies = [
    { name: 'haproxy', port: (s: Scenario) => (s.protocol === 'http' ? PORTS.haproxyHttp : PORTS.haproxyTcp) },
    { name: 'turbine', port: (s: Scenario) => (s.protocol === 'http' ? PORTS.turbineHttp : PORTS.turbineTcp) },
  ];
  const runs: Record<string, Record<string, WrkResult[]>> = {};
  if (!smoke) {
    for (const p of proxies) await wrk(config.loadCpus, `http://127.0.0.1:${p.port(SCENARIOS[0]!)}/small`, 3, connections); // warm-up (JIT, pools)
  }
  for (let round = 0; round < rounds; round += 1) {
    for (const scenario of config.scenarios) {
      for (const p of proxies) {
        const r = await wrk(config.loadCpus, `http://127.0.0.1:${p.port(scenario)}${scenario.path}`, seconds, connections, scenario.headers);
        ((runs[scenario.name] ??= {})[p.name] ??= []).push(r);
      }
    }
  }
  for (const s of config.scenarios) {
    const m = (proxy: string, f: keyof WrkResult) => median(runs[s.name]![proxy]!.map((r) => r[f]));
    const value = (proxy: string) => (s.unit === 'rps' ? m(proxy, 'rps') : m(proxy, 'mbPerSec'));
    const errors = (proxy: string) => runs[s.name]![proxy]!.reduce((n, r) => n + r.errors, 0);
    results.push({
      scenario: s.name, unit: s.unit, workers: config.workers, pinning: `proxy CPU ${config.proxyCpus}, wrk CPU ${config.loadCpus}, nginx CPU 1`,
      haproxy: { value: value('haproxy'), p50ms: m('haproxy', 'p50ms'), p99ms: m('haproxy', 'p99ms'), errors: errors('haproxy') },
      turbine: { value: value('turbine'), p50ms: m('turbine', 'p50ms'), p99ms: m('turbine', 'p99ms'), errors: errors('turbine') },
      ratio: value('turbine') / value('haproxy'),
    });
  }
  await Promise.all([stop(turbine), stop(haproxy)]);
}

interface Measured { value: number; p50ms: number; p99ms: number; errors: number }
interface Row { scenario: string; unit: string; workers: number; pinning: string; haproxy: Measured; turbine: Measured; ratio: number }

async function main(): Promise<void> {
  const missing = ['nginx', 'haproxy', 'wrk', 'taskset'].filter((c) => !have(c));
  if (missing.length > 0) {
    process.stderr.write(`bench: needs ${missing.join(', ')} (apt-get install -y nginx-light haproxy wrk util-linux)\n`);
    process.exit(2);
  }
  // Two cores: with one worker the proxy under test gets CPU 0 to itself and the load generator and
  // the backend share CPU 1; with two, everything shares both cores (said in the table).
  const configs: Config[] = [
    { workers: 1, proxyCpus: '0', loadCpus: '1', scenarios: SCENARIOS },
    { workers: 2, proxyCpus: '0-1', loadCpus: '0-1', scenarios: [SCENARIOS[0]!] },
  ];
  const nginx = startNginx('1', PORTS.nginx);
  const marathon = new FakeMarathon();
  await marathon.listen();
  marathon.putApp({ id: '/bench-http', labels: { HAPROXY_GROUP: 'bench', HAPROXY_0_MODE: 'http' }, portDefinitions: [{ port: PORTS.turbineHttp }] },
    [{ host: '127.0.0.1', ports: [PORTS.nginx] }]);
  marathon.putApp({ id: '/bench-tcp', labels: { HAPROXY_GROUP: 'bench', HAPROXY_0_MODE: 'tcp' }, portDefinitions: [{ port: PORTS.turbineTcp }] },
    [{ host: '127.0.0.1', ports: [PORTS.nginx] }]);
  await waitForPort(PORTS.nginx);
  const rows: Row[] = [];
  for (const config of configs) await runConfig(config, marathon.url, rows);

  const one = rows.find((r) => r.workers === 1 && r.scenario === SCENARIOS[0]!.name)!;
  const two = rows.find((r) => r.workers === 2)!;
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version,
    haproxy: version('haproxy', '-v'), nginx: version('nginx', '-v'), date: new Date().toISOString(),
  };
  process.stdout.write(`\n${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.haproxy}\n`);
  process.stdout.write(`${connections} connections; ${rounds} round(s) of ${seconds} s, HAProxy and Turbine alternating; medians\n\n`);
  process.stdout.write(table(['scenario', 'workers', 'pinning', 'unit', 'HAProxy', 'p50 ms', 'p99 ms', 'Turbine', 'p50 ms', 'p99 ms', 'Turbine/HAProxy', 'errors H/T'],
    rows.map((r) => [r.scenario, String(r.workers), r.pinning, r.unit, r.haproxy.value, r.haproxy.p50ms, r.haproxy.p99ms, r.turbine.value, r.turbine.p50ms, r.turbine.p99ms,
      `${r.ratio.toFixed(2)}x`, `${r.haproxy.errors}/${r.turbine.errors}`])) + '\n');
  const scaling = two.turbine.value / one.turbine.value;
  process.stdout.write(`\nTurbine 2 workers / 1 worker (${SCENARIOS[0]!.name}): ${scaling.toFixed(2)}x; HAProxy 2 threads / 1: ${(two.haproxy.value / one.haproxy.value).toFixed(2)}x\n`);
  if (!smoke) {
    writeResult('throughput', { machine, connections, rounds, seconds, rows, scaling });
  }
  await stop(nginx);
  await marathon.close();
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(1);
});
