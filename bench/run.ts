// npm run bench: Turbine against HAProxy in the same run, on the same machine, same backend (nginx,
// one worker), same pinning, runs alternating HAProxy/Turbine for several rounds; medians.
// Prints one table and writes bench/results/throughput.json. `--smoke`: one short round, to prove
// the harness works (CI). Needs Debian's nginx, haproxy and wrk.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { FakeMarathon } from '../src/demo/fake-marathon.js';
import { have, median, start, startNginx, stop, table, waitForPort, workdir, wrk, type WrkResult } from './lib.js';

const args = process.argv.slice(2);
const smoke = args.includes('--smoke');
const rounds = smoke ? 1 : Number(args[args.indexOf('--rounds') + 1] ?? 3) || 3;
const seconds = smoke ? 1 : Number(args[args.indexOf('--seconds') + 1] ?? 8) || 8;
const connections = 50;

const PORTS = { nginx: 18180, haproxyHttp: 18181, haproxyTcp: 18182, turbineHttp: 18183, turbineTcp: 18184, admin: 18185, vhost: 18186, appid: 18187 };
// Two cores: the proxy under test gets CPU 0 to itself; the load generator and the backend share CPU 1.
const PIN = { proxy: '0', load: '1', backend: '1' };

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

function haproxyConfig(): string {
  return `global
  nbthread 1
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

async function main(): Promise<void> {
  const missing = ['nginx', 'haproxy', 'wrk', 'taskset'].filter((c) => !have(c));
  if (missing.length > 0) {
    process.stderr.write(`bench: needs ${missing.join(', ')} (apt-get install -y nginx-light haproxy wrk util-linux)\n`);
    process.exit(2);
  }
  const nginx = startNginx(PIN.backend, PORTS.nginx);
  const haproxyCfg = join(workdir, 'haproxy.cfg');
  writeFileSync(haproxyCfg, haproxyConfig());
  const haproxy = start(PIN.proxy, 'haproxy', ['-f', haproxyCfg, '-db']);

  const marathon = new FakeMarathon();
  await marathon.listen();
  marathon.putApp({ id: '/bench-http', labels: { HAPROXY_GROUP: 'bench', HAPROXY_0_MODE: 'http' }, portDefinitions: [{ port: PORTS.turbineHttp }] },
    [{ host: '127.0.0.1', ports: [PORTS.nginx] }]);
  marathon.putApp({ id: '/bench-tcp', labels: { HAPROXY_GROUP: 'bench', HAPROXY_0_MODE: 'tcp' }, portDefinitions: [{ port: PORTS.turbineTcp }] },
    [{ host: '127.0.0.1', ports: [PORTS.nginx] }]);
  const turbine = start(PIN.proxy, process.execPath, [join(import.meta.dirname, '../src/cli.js'), '--marathon', marathon.url, '--group', 'bench',
    '--bind', '127.0.0.1', '--admin-port', String(PORTS.admin), '--http-port', String(PORTS.vhost), '--appid-port', String(PORTS.appid),
    '--log-level', 'warn', '--no-active-health-checks']);
  await Promise.all([PORTS.nginx, PORTS.haproxyHttp, PORTS.haproxyTcp, PORTS.turbineHttp, PORTS.turbineTcp].map((p) => waitForPort(p)));

  const proxies = [
    { name: 'haproxy', port: (s: Scenario) => (s.protocol === 'http' ? PORTS.haproxyHttp : PORTS.haproxyTcp) },
    { name: 'turbine', port: (s: Scenario) => (s.protocol === 'http' ? PORTS.turbineHttp : PORTS.turbineTcp) },
  ];
  const results: Record<string, Record<string, WrkResult[]>> = {};
  if (!smoke) {
    for (const p of proxies) await wrk(PIN.load, `http://127.0.0.1:${p.port(SCENARIOS[0]!)}/small`, 3, connections); // warm-up (JIT, pools)
  }
  for (let round = 0; round < rounds; round += 1) {
    for (const scenario of SCENARIOS) {
      for (const p of proxies) {
        const r = await wrk(PIN.load, `http://127.0.0.1:${p.port(scenario)}${scenario.path}`, seconds, connections, scenario.headers);
        ((results[scenario.name] ??= {})[p.name] ??= []).push(r);
      }
    }
  }

  const rows = SCENARIOS.map((s) => {
    const m = (proxy: string, f: keyof WrkResult) => median(results[s.name]![proxy]!.map((r) => r[f]));
    const value = (proxy: string) => (s.unit === 'rps' ? m(proxy, 'rps') : m(proxy, 'mbPerSec'));
    const errors = (proxy: string) => results[s.name]![proxy]!.reduce((n, r) => n + r.errors, 0);
    return {
      scenario: s.name, unit: s.unit,
      haproxy: { value: value('haproxy'), p50ms: m('haproxy', 'p50ms'), p99ms: m('haproxy', 'p99ms'), errors: errors('haproxy') },
      turbine: { value: value('turbine'), p50ms: m('turbine', 'p50ms'), p99ms: m('turbine', 'p99ms'), errors: errors('turbine') },
      ratio: value('turbine') / value('haproxy'),
    };
  });
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version,
    haproxy: version('haproxy', '-v'), nginx: version('nginx', '-v'), date: new Date().toISOString(),
  };
  const pinning = `proxy on CPU ${PIN.proxy} (1 process / 1 thread); wrk and nginx (1 worker) on CPU ${PIN.load}`;
  process.stdout.write(`\n${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.haproxy}\n`);
  process.stdout.write(`pinning: ${pinning}; ${connections} connections; ${rounds} round(s) of ${seconds} s, HAProxy and Turbine alternating; medians\n\n`);
  process.stdout.write(table(['scenario', 'unit', 'HAProxy', 'p50 ms', 'p99 ms', 'Turbine', 'p50 ms', 'p99 ms', 'Turbine/HAProxy', 'errors H/T'],
    rows.map((r) => [r.scenario, r.unit, r.haproxy.value, r.haproxy.p50ms, r.haproxy.p99ms, r.turbine.value, r.turbine.p50ms, r.turbine.p99ms,
      `${r.ratio.toFixed(2)}x`, `${r.haproxy.errors}/${r.turbine.errors}`])) + '\n');
  if (!smoke) {
    const dir = join(import.meta.dirname, '../../bench/results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'throughput.json'), JSON.stringify({ machine, pinning, connections, rounds, seconds, rows }, null, 2) + '\n');
  }
  await Promise.all([stop(turbine), stop(haproxy), stop(nginx)]);
  await marathon.close();
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(1);
});
