// npm run build && node dist/bench/ab.js [--rounds N] [--seconds S] [--path /small] [--header 'H: v'] BUILD...
// Paired A/B rounds: two or more builds of Turbine and HAProxy all stay running (each pinned to
// CPU 0, as bench/run pins them; wrk and the nginx backend on CPU 1), and short wrk runs alternate
// between them, in an order that flips every round. Each round's figures are compared within the
// round, and the table shows the medians of those ratios. This machine's speed shifts between
// modes (HAProxy's 100 B rate at 29,000 or 40,000 req/s) often enough that sequential A/B runs
// could not tell a 4% change from a 1% one; within a round, a shift hits every build alike.
// A BUILD is a built dist/ folder (e.g. `git worktree add /tmp/a <commit> && (cd /tmp/a && npm ci && npm run build)`,
// then /tmp/a/dist), optionally with Node flags: /tmp/a/dist@--single-threaded-gc,--max-semi-space-size=32.
// `--smoke`: this checkout's own dist twice, one round of one second (CI proves it runs).
import { join } from 'node:path';
import { FakeMarathon } from '../src/demo/fake-marathon.js';
import { have, median, medianRatio, roundOrder, selfSignedCertificate, startNginx, startTurbineProcess, stop, table, waitForPort, wrk, type TurbineBuild, type WrkResult } from './lib.js';
import { PORTS, startProxy } from './proxies.js';

const args = process.argv.slice(2);
const smoke = args.includes('--smoke');
const option = (name: string): string | undefined => {
  const at = args.indexOf(name);
  return at === -1 ? undefined : args[at + 1];
};
const rounds = smoke ? 1 : Number(option('--rounds') ?? 20);
const seconds = smoke ? 1 : Number(option('--seconds') ?? 3);
const path = option('--path') ?? '/small';
const headers = args.flatMap((a, i) => (args[i - 1] === '--header' ? [a] : []));
const valued = new Set(['--rounds', '--seconds', '--path', '--header']);
const specs = smoke ? [join(import.meta.dirname, '..'), join(import.meta.dirname, '..')]
  : args.filter((a, i) => !a.startsWith('--') && !valued.has(args[i - 1] ?? ''));
const CONNECTIONS = 50;
const BACKEND = 18180;
/** Turbine builds listen from here, ten ports apart (service port, then admin and its neighbours). */
const FIRST_PORT = 18301;

interface Contender {
  label: string;
  port: number;
  results: WrkResult[];
}

async function main(): Promise<void> {
  const missing = ['nginx', 'haproxy', 'wrk', 'taskset'].filter((c) => !have(c));
  if (missing.length > 0 || specs.length === 0 || !Number.isFinite(rounds) || !Number.isFinite(seconds)) {
    process.stderr.write(missing.length > 0 ? `ab: needs ${missing.join(', ')}\n` : 'usage: node dist/bench/ab.js [--rounds N] [--seconds S] [--path P] [--header H] BUILD[@--node-flag,...] ...\n');
    process.exit(2);
  }
  const nginx = startNginx('1', BACKEND);
  const marathon = new FakeMarathon();
  await marathon.listen();
  const builds: (TurbineBuild & { port: number })[] = specs.map((spec, i) => {
    const [dist, flags] = spec.split('@') as [string, string | undefined];
    return { dist, nodeFlags: flags === undefined ? [] : flags.split(','), group: `ab${i}`, port: FIRST_PORT + 10 * i };
  });
  for (const [i, b] of builds.entries()) {
    marathon.putApp({ id: `/ab-${i}`, labels: { HAPROXY_GROUP: b.group, HAPROXY_0_MODE: 'http' }, portDefinitions: [{ port: b.port }] }, [{ host: '127.0.0.1', ports: [BACKEND] }]);
  }
  await waitForPort(BACKEND);
  const processes = builds.map((b) => startTurbineProcess('0', marathon.url, b.port + 2, 1, [], b));
  const haproxy = startProxy('haproxy', '0', 1, { web: BACKEND, ws: BACKEND }, selfSignedCertificate(), marathon.url);
  const contenders: Contender[] = [
    ...builds.map((b, i) => ({ label: `${i}: ${b.dist}${b.nodeFlags.length > 0 ? ` ${b.nodeFlags.join(' ')}` : ''}`, port: b.port, results: [] })),
    { label: 'HAProxy', port: PORTS.haproxy.http, results: [] },
  ];
  try {
    await Promise.all(contenders.map((c) => waitForPort(c.port, 20_000)));
    const url = (c: Contender) => `http://127.0.0.1:${c.port}${path}`;
    if (!smoke) for (const c of contenders) await wrk('1', url(c), 2, CONNECTIONS, headers); // warm-up (JIT, pools)
    process.stderr.write(`ab: ${rounds} round(s) of ${seconds} s for each of ${contenders.length}\n`);
    for (let round = 0; round < rounds; round += 1) {
      for (const c of roundOrder(contenders, round)) c.results.push(await wrk('1', url(c), seconds, CONNECTIONS, headers));
    }
  } finally {
    await Promise.all([...processes, haproxy.child, nginx].map((p) => stop(p)));
    await marathon.close();
  }
  const first = contenders[0]!;
  const base = contenders.at(-1)!;
  const within = (c: Contender, to: Contender, f: (r: WrkResult) => number) => medianRatio(c.results, to.results, f);
  process.stdout.write(`${path}${headers.map((h) => ` (${h})`).join('')}, ${CONNECTIONS} connections, ${rounds} round(s) of ${seconds} s; medians of per-round ratios\n\n`);
  process.stdout.write(table(['contender', 'req/s (median)', 'p99 ms (median)', 'req/s vs 0', 'req/s vs HAProxy', 'p99 vs HAProxy'],
    contenders.map((c) => [c.label, median(c.results.map((r) => r.rps)), median(c.results.map((r) => r.p99ms)),
      `${within(c, first, (r) => r.rps).toFixed(3)}x`, `${within(c, base, (r) => r.rps).toFixed(3)}x`, `${within(c, base, (r) => r.p99ms).toFixed(2)}x`])) + '\n');
}

main().catch((err: Error) => {
  process.stderr.write(`ab: ${err.message}\n`);
  process.exit(1);
});
