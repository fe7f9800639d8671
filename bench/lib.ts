// Shared pieces of the benchmarks: starting and stopping processes, the nginx backend, wrk runs
// and their parsing, medians, tables. Every process started here is stopped on exit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const children = new Set<ChildProcess>();
export const workdir = mkdtempSync(join(tmpdir(), 'turbine-bench-'));

/**
 * Signals a started process and everything it started: each leads its own process group, since
 * nginx's workers outlive a master killed with SIGKILL and would keep the port.
 */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // the group is gone already
  }
}

function stopAll(): void {
  for (const child of children) killGroup(child, 'SIGKILL');
}
process.on('exit', stopAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => { stopAll(); process.exit(130); });

export function have(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

/** Starts a process pinned to `cpus` (taskset list, e.g. "0" or "0-1"). */
export function start(cpus: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn('taskset', ['-c', cpus, command, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env, detached: true });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => { err = (err + c).slice(-2000); });
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (code && code !== 0 && signal === null) process.stderr.write(`${command} exited ${code}: ${err}\n`);
  });
  children.add(child);
  return child;
}

/** Another build of Turbine (bench/ab): its dist/ folder, Node flags to run it with, the group it serves. */
export interface TurbineBuild {
  dist: string;
  nodeFlags: string[];
  group: string;
}

/** Turbine as a user runs it, pinned to `cpus`, serving group "bench" from the given Marathon (or `build`, another build, its group). */
export function startTurbineProcess(cpus: string, marathonUrl: string, adminPort: number, workers: number, extraArgs: string[] = [], build?: TurbineBuild): ChildProcess {
  const cli = build === undefined ? join(import.meta.dirname, '../src/cli.js') : join(build.dist, 'src/cli.js');
  return start(cpus, process.execPath, [...build?.nodeFlags ?? [], cli, '--marathon', marathonUrl, '--group', build?.group ?? 'bench',
    '--bind', '127.0.0.1', '--admin-port', String(adminPort), '--http-port', String(adminPort + 1), '--appid-port', String(adminPort + 2),
    '--log-level', 'warn', '--no-active-health-checks', '--workers', String(workers), ...extraArgs]);
}

/** One of the bench's own Node programs (dist/bench/NAME.js) pinned to `cpus`; resolves with the JSON it prints. */
export function runBenchProgram<T>(cpus: string, name: string, args: (string | number)[], timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', cpus, process.execPath, join(import.meta.dirname, `${name}.js`), ...args.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => { out += c; });
    child.stderr.on('data', (c: Buffer) => { err = (err + c).slice(-2000); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code !== 0) reject(new Error(`${name} ${signal === 'SIGKILL' ? `killed after ${timeoutMs} ms` : `exited ${code}`}: ${err}`));
      else resolve(JSON.parse(out) as T);
    });
  });
}

/** Resident memory of a process, from /proc. */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

/** A self-signed certificate for bench.local and localhost, made by openssl now: key and certificate apart, and both in one PEM. */
export function selfSignedCertificate(): { pem: string; cert: string; key: string } {
  const dir = join(workdir, 'tls');
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=bench.local', '-addext', 'subjectAltName=DNS:bench.local,DNS:localhost', '-keyout', key, '-out', cert], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl could not make the bench certificate: ${r.stderr}`);
  // Servers that drop privileges (nginx's workers) must read them.
  chmodSync(dir, 0o755);
  chmodSync(key, 0o644);
  const pem = join(dir, 'both.pem');
  writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { pem, cert, key };
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    killGroup(child, 'SIGKILL');
    return;
  }
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
  killGroup(child, 'SIGKILL');
}

export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The size of the backend's /huge body: the slow-reader row reads up to this much of it. */
export const HUGE_BYTES = 1024 * 1024 * 1024;

/**
 * nginx with one worker: /small answers 100 bytes, /large 64 KiB, both from memory or page cache;
 * /huge 1 GiB of zeros from a sparse file (no disk used).
 */
export function startNginx(cpus: string, port: number): ChildProcess {
  const dir = join(workdir, 'nginx');
  mkdirSync(dir, { recursive: true });
  // nginx's worker runs unprivileged: it must be able to read the body file.
  chmodSync(workdir, 0o755);
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'large'), 'L'.repeat(64 * 1024));
  writeFileSync(join(dir, 'huge'), '');
  truncateSync(join(dir, 'huge'), HUGE_BYTES);
  writeFileSync(join(dir, 'nginx.conf'), `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  server { listen 127.0.0.1:${port};
    location = /small { return 200 "${'0'.repeat(100)}"; }
    location = /large { root ${dir}; default_type application/octet-stream; }
    location = /huge { root ${dir}; default_type application/octet-stream; }
  } }
`);
  return start(cpus, 'nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir]);
}

export interface WrkResult {
  rps: number;
  mbPerSec: number;
  p50ms: number;
  p99ms: number;
  errors: number;
}

function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

function toMB(text: string): number {
  const m = /^([\d.]+)(B|KB|MB|GB)$/.exec(text.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'B' ? n / 1e6 : m[2] === 'KB' ? n / 1e3 : m[2] === 'GB' ? n * 1e3 : n;
}

export function parseWrk(out: string): WrkResult {
  const field = (re: RegExp) => re.exec(out)?.[1] ?? '';
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(field(/Non-2xx or 3xx responses: (\d+)/) || 0);
  return {
    rps: Number(field(/Requests\/sec:\s+([\d.]+)/)),
    mbPerSec: toMB(field(/Transfer\/sec:\s+(\S+)/)),
    p50ms: toMs(field(/^\s+50%\s+(\S+)/m)),
    p99ms: toMs(field(/^\s+99%\s+(\S+)/m)),
    errors: non2xx + (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  };
}

/** One wrk run, bounded by `seconds`. */
export function wrk(cpus: string, url: string, seconds: number, connections: number, headers: string[] = []): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const args = ['-c', cpus, 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url];
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 10) * 1000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      if (code !== 0) reject(new Error(`wrk exited ${code}: ${out}`));
      else resolve(parseWrk(out));
    });
  });
}

/** Writes bench/results/NAME.json (beside the sources, not in dist/). */
export function writeResult(name: string, data: unknown): void {
  const dir = join(import.meta.dirname, '../../bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), JSON.stringify({ date: new Date().toISOString(), ...data as object }, null, 2) + '\n');
}

/**
 * The runs of one round, in the order given, flipped every other round: this machine's speed
 * shifts between modes, and an order that flips lets a shift hit neither side of a comparison
 * more than the other (bench/run, bench/ab).
 */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  return round % 2 === 0 ? [...items] : [...items].reverse();
}

/** The median over rounds of `f(mine[i]) / f(base[i])`: a comparison taken within each round. */
export function medianRatio(mine: readonly WrkResult[], base: readonly WrkResult[], f: (r: WrkResult) => number): number {
  return median(mine.map((r, i) => f(r) / f(base[i]!)));
}

export function median(values: number[]): number {
  const sorted = [...values].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? NaN;
}

export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: (string | number)[]) => '| ' + r.map((c, i) => String(c).padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(cells[0]!), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join('\n');
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}
