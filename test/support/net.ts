// Small real-socket helpers for tests: free ports, waiting for a condition, a TCP round trip.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';

// Test files run in parallel processes. A port found free and released can be handed to another
// process before we bind it again, so ports come from below the kernel's ephemeral range (port-0
// binds never land there) and each one is claimed with an exclusive lock file naming our pid.
const PORT_LOW = 20_000;
const PORT_HIGH = 32_000;
const LOCK_DIR = join(tmpdir(), 'turbine-test-ports');
mkdirSync(LOCK_DIR, { recursive: true });

function claim(port: number): boolean {
  const lock = join(LOCK_DIR, String(port));
  try {
    writeFileSync(lock, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    const owner = Number(readFileSync(lock, 'utf8'));
    if (owner === process.pid || isAlive(owner)) return false;
    rmSync(lock, { force: true }); // a finished test run left it behind
    return claim(port);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function bindable(port: number): Promise<boolean> {
  const server = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => server.close(() => resolve()));
  return ok;
}

/** A port on 127.0.0.1 that no other test process will use while this one runs. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 1000; attempt += 1) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW));
    if (claim(port) && await bindable(port)) return port;
  }
  throw new Error(`no free port in ${PORT_LOW}-${PORT_HIGH}`);
}

/** The sum of every sample of `name` in Prometheus text whose labels include all of `labels`. */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** Polls until `check` returns a truthy value; fails with `what` after the timeout. */
export async function until<T>(check: () => T | Promise<T>, what: string, timeoutMs = 5000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until `url` answers 200 (a listener opening, a service appearing). */
export async function untilServed(url: string, what: string, timeoutMs = 5000, headers: Record<string, string> = {}): Promise<void> {
  await until(async () => {
    try {
      return (await get(url, headers)).status === 200;
    } catch {
      return false;
    }
  }, what, timeoutMs);
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

const agent = new Agent({ keepAliveTimeout: 500, connections: 16 });

export async function get(url: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<HttpResult> {
  const res = await request(url, { method: method as 'GET', headers, dispatcher: agent, body: body ?? null });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: <T>() => JSON.parse(text) as T };
}

/** Connects, writes `payload`, half-closes, and returns everything the server sent before closing. */
export function tcpRoundTrip(port: number, payload: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('tcp round trip timed out')));
    socket.on('connect', () => socket.end(payload));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });
}

/** `promise`, or a rejection naming `what` after `ms` (for requests that might hang forever). */
export function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms: ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Writes `bytes` on one connection and collects what comes back until the server closes or `done` says enough. */
export function converse(port: number, bytes: string, done: (text: string) => boolean = () => false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let text = '';
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no end within 5 s; got ${JSON.stringify(text)}`)));
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (done(text)) socket.destroy();
    });
    socket.on('close', () => resolve(text));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve(text) : reject(err)));
  });
}

/** Opens a raw connection; `text()` is all that came back so far. */
export function rawClient(port: number): { socket: Socket; text: () => string; closed: Promise<number> } {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
  return { socket, text: () => text, closed };
}

/** Waits until `read()` stops changing: the same value twice, `quietMs` apart. */
export async function settled(read: () => number | Promise<number>, what: string, quietMs: number, timeoutMs = 5000): Promise<number> {
  let last = NaN;
  return until(async () => {
    const now = await read();
    await new Promise((r) => setTimeout(r, quietMs));
    const still = now === last && now === await read();
    last = now;
    return still ? { now } : null;
  }, what, timeoutMs).then((v) => v.now);
}
