// A black-box differential test of HTTP/1.1 request framing: generated and mutated connections
// (every request-smuggling shape) go to llhttp (a node:http server with default strictness, the
// oracle) and through Turbine to a recording backend. Turbine may refuse more than llhttp; it may
// never forward a request llhttp refuses, nor end a request where llhttp does not.
//
// Each request carries a unique path (/f/<input>/<n>); bodies of the shapes that smuggle hold a
// whole inner request (/f/<input>/s<n>), so a boundary drawn differently shows up as a path the
// oracle never saw.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;
const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

interface Request {
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
  body: string;
  /** Raw bytes after the head; null: derived from body and the framing headers. */
  rawBody: string | null;
  eol: string;
}

export interface FuzzInput {
  id: number;
  bytes: Buffer;
  /** Offsets where the bytes are split across writes. */
  splits: number[];
  /** Which mutations made it (for the report). */
  shapes: string[];
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];

function chunked(body: string, r: Random): string {
  let out = '';
  let i = 0;
  while (i < body.length) {
    const n = 1 + Math.floor(r() * Math.max(1, body.length - i));
    const ext = r() < 0.2 ? ';name=value' : '';
    out += `${n.toString(16)}${ext}\r\n${body.slice(i, i + n)}\r\n`;
    i += n;
  }
  return out + (r() < 0.2 ? '0\r\nX-Trailer: t\r\n\r\n' : '0\r\n\r\n');
}

function innerRequest(input: number, n: number): string {
  return `GET /f/${input}/s${n}/${input} HTTP/1.1\r\nHost: a.test\r\n\r\n`;
}

function baseRequest(r: Random, input: number, n: number): Request {
  const method = pick(r, METHODS);
  const framing = method === 'GET' || method === 'OPTIONS' ? pick(r, ['none', 'none', 'length', 'chunked']) : pick(r, ['length', 'chunked', 'none']);
  const body = framing === 'none' ? '' : r() < 0.4 ? innerRequest(input, n) : 'b'.repeat(1 + Math.floor(r() * 40));
  const headers: [string, string][] = [['Host', 'a.test']];
  if (r() < 0.5) headers.push(['X-Fuzz', `v${Math.floor(r() * 1000)}`]);
  if (framing === 'length') headers.push(['Content-Length', String(body.length)]);
  if (framing === 'chunked') headers.push(['Transfer-Encoding', 'chunked']);
  const query = r() < 0.2 ? '?q=1' : '';
  return { method, target: `/f/${input}/${n}/${input}${query}`, version: 'HTTP/1.1', headers, body, rawBody: framing === 'chunked' ? chunked(body, r) : null, eol: '\r\n' };
}

function serialise(req: Request): string {
  const head = [`${req.method} ${req.target} ${req.version}`, ...req.headers.map(([k, v]) => `${k}: ${v}`)].join(req.eol);
  return head + req.eol + req.eol + (req.rawBody ?? req.body);
}

const setHeader = (req: Request, name: string, value: string) => {
  req.headers = req.headers.filter(([k]) => k.toLowerCase() !== name.toLowerCase());
  req.headers.push([name, value]);
};

/** Each mutation turns a valid request into one shape; `r` picks the variant. */
const MUTATIONS: Record<string, (req: Request, r: Random, input: number, n: number) => void> = {
  'cl+te': (req, r, input, n) => {
    const smuggled = innerRequest(input, n);
    req.body = smuggled;
    req.headers = req.headers.filter(([k]) => !/^(content-length|transfer-encoding)$/i.test(k));
    req.headers.push(['Content-Length', String(smuggled.length)], ['Transfer-Encoding', pick(r, ['chunked', 'Chunked', ' chunked'])]);
    req.rawBody = r() < 0.5 ? `0\r\n\r\n${smuggled}` : smuggled;
  },
  'te+cl': (req, r, input, n) => {
    req.body = innerRequest(input, n);
    req.rawBody = chunked(req.body, r);
    req.headers = req.headers.filter(([k]) => !/^(content-length|transfer-encoding)$/i.test(k));
    req.headers.push(['Transfer-Encoding', 'chunked'], ['Content-Length', String(pick(r, [0, 3, req.body.length]))]);
  },
  'duplicate-cl': (req, r) => {
    req.body = 'dupdup';
    req.rawBody = null;
    req.headers = req.headers.filter(([k]) => !/^(content-length|transfer-encoding)$/i.test(k));
    req.headers.push(['Content-Length', '6'], ['Content-Length', pick(r, ['6', '3', '0'])]);
  },
  'comma-cl': (req, r) => {
    req.body = 'commas';
    req.rawBody = null;
    setHeader(req, 'Content-Length', pick(r, ['6, 6', '6,6', '6, 3', '6,']));
  },
  'odd-cl': (req, r) => {
    req.body = 'odd';
    req.rawBody = null;
    setHeader(req, 'Content-Length', pick(r, ['+3', '-3', ' 3', '3 ', '03', '0x3', '3.0', '99999999999999999999', '', '1e1']));
  },
  'te-obfuscation': (req, r, input, n) => {
    req.body = innerRequest(input, n);
    req.rawBody = chunked(req.body, r);
    req.headers = req.headers.filter(([k]) => !/^(content-length|transfer-encoding)$/i.test(k));
    req.headers.push(['Content-Length', String(req.rawBody.length)]);
    const te = pick(r, ['chunked, identity', 'identity', 'gzip, chunked', 'chunked, gzip', 'xchunked', 'chunked\x0b', 'chunked;x=1', '"chunked"', 'chunk', 'CHUNKED']);
    req.headers.push(['Transfer-Encoding', te]);
    if (r() < 0.3) req.headers.push(['Transfer-Encoding', pick(r, ['chunked', 'identity'])]);
  },
  'obs-fold': (req, r) => {
    const i = Math.floor(r() * req.headers.length);
    req.headers[i] = [req.headers[i]![0], `${req.headers[i]![1]}\r\n ${pick(r, ['folded', 'chunked', '5'])}`];
  },
  'bare-lf': (req) => { req.eol = '\n'; },
  'bare-cr': (req, r) => {
    const i = Math.floor(r() * req.headers.length);
    req.headers[i] = [req.headers[i]![0], `${req.headers[i]![1]}\rX-Injected: 1`];
  },
  'control-byte': (req, r) => {
    const byte = pick(r, ['\x00', '\x01', '\x7f', '\x0b', '\x1b']);
    const where = pick(r, ['name', 'value', 'target']);
    if (where === 'target') req.target += byte;
    else if (where === 'name') req.headers.push([`X-B${byte}d`, 'v']);
    else req.headers.push(['X-Bad', `v${byte}v`]);
  },
  'space-before-colon': (req, r) => {
    req.body = 'spaced';
    req.rawBody = null;
    req.headers = req.headers.filter(([k]) => !/^(content-length|transfer-encoding)$/i.test(k));
    req.headers.push([pick(r, ['Content-Length ', 'Content-Length\t', ' Content-Length']), '6']);
  },
  'bad-token': (req, r) => { req.headers.push([pick(r, ['X(y)', 'X y', 'X:y', 'X@y', 'X"y', '']), 'v']); },
  'huge-head': (req, r) => { req.headers.push(['X-Big', 'h'.repeat(pick(r, [8_000, 17_000, 70_000]))]); },
  'chunk-size': (req, r) => {
    req.headers = req.headers.filter(([k]) => !/^(content-length|transfer-encoding)$/i.test(k));
    req.headers.push(['Transfer-Encoding', 'chunked']);
    req.body = 'abc';
    req.rawBody = pick(r, ['fffffffffffffffff1\r\nabc\r\n0\r\n\r\n', '3 \r\nabc\r\n0\r\n\r\n', ' 3\r\nabc\r\n0\r\n\r\n', '0x3\r\nabc\r\n0\r\n\r\n',
      '3;\x00\r\nabc\r\n0\r\n\r\n', '3\r\nabcX0\r\n\r\n', '3\r\nabc\r\n0\r\n', '3\nabc\n0\n\n', '-3\r\nabc\r\n0\r\n\r\n', '3\r\nabc\r\n\r\n']);
  },
  'http10': (req, r) => {
    req.version = 'HTTP/1.0';
    if (r() < 0.7) req.headers.push(['Connection', 'keep-alive']);
  },
  'bad-version': (req, r) => { req.version = pick(r, ['HTTP/1.2', 'HTTP/2.0', 'http/1.1', 'HTTP/1.1 ', 'HTTP/1', 'HTTP/0.9']); },
  'absolute-form': (req, r) => { req.target = `http://${pick(r, ['a.test', 'b.test', 'a.test:80'])}${req.target}`; },
  'host': (req, r) => {
    if (r() < 0.5) req.headers = req.headers.filter(([k]) => k.toLowerCase() !== 'host');
    else req.headers.push(['Host', pick(r, ['a.test', 'b.test'])]);
  },
  'byte-flip': () => { /* applied to the bytes in generate() */ },
};

export const SHAPES = Object.keys(MUTATIONS);

export function generate(seed: number, id: number): FuzzInput {
  const r = rng(seed * 1_000_003 + id);
  const count = r() < 0.6 ? 1 : r() < 0.7 ? 2 : 3;
  const shapes: string[] = [];
  let text = '';
  let flip = false;
  for (let n = 0; n < count; n += 1) {
    const req = baseRequest(r, id, n);
    if (r() < 0.75) {
      const shape = pick(r, SHAPES);
      shapes.push(shape);
      if (shape === 'byte-flip') flip = true;
      else MUTATIONS[shape]!(req, r, id, n);
    }
    text += serialise(req);
  }
  const bytes = Buffer.from(text, 'latin1');
  if (flip) {
    const at = Math.floor(r() * Math.min(bytes.length, 200));
    bytes[at] = Math.floor(r() * 256);
  }
  const splits: number[] = [];
  if (r() < 0.4) for (let i = 0; i < 1 + Math.floor(r() * 3); i += 1) splits.push(1 + Math.floor(r() * (bytes.length - 1)));
  return { id, bytes, splits: [...new Set(splits)].sort((a, b) => a - b), shapes };
}

/** What a server parsed for one tagged path. */
export interface Seen {
  method: string;
  body: string;
  complete: boolean;
}

/** A node:http server (llhttp, default strictness) that records every request by its tagged path. */
export class RecordingServer {
  readonly seen = new Map<string, Seen>();
  /** llhttp's error codes for what this server could not parse. */
  readonly clientErrors: string[] = [];
  private server: Server | null = null;
  port = 0;

  async listen(): Promise<number> {
    const server = createServer((req, res) => this.record(req, res));
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // A connection cut short (ECONNRESET, a half-sent request) is not a parse error.
      if (err.code?.startsWith('HPE_') && err.code !== 'HPE_INVALID_EOF_STATE') {
        const raw = (err as { rawPacket?: Buffer }).rawPacket;
        this.clientErrors.push(`${err.code}: ${err.message}; bytes ${JSON.stringify(raw?.toString('latin1').slice(0, 400) ?? '')}`);
      }
      socket.destroy();
    });
    server.keepAliveTimeout = 2_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this.port;
  }

  private record(req: IncomingMessage, res: import('node:http').ServerResponse): void {
    const path = taggedPath(req.url ?? '');
    const entry: Seen = { method: req.method ?? '', body: '', complete: false };
    if (path !== null && !this.seen.has(path)) this.seen.set(path, entry);
    req.setEncoding('latin1');
    req.on('data', (d: string) => { entry.body += d; });
    req.on('end', () => {
      entry.complete = true;
      res.writeHead(200, { 'content-length': '2' });
      res.end('ok');
    });
    req.on('error', () => {});
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server ? this.server.close(() => resolve()) : resolve());
  }
}

/**
 * `/f/<input>/<n>` from an origin- or absolute-form target `/f/<input>/<n>/<input>`; null for
 * anything else. The input id is written twice so that a byte flipped in one copy cannot pass for
 * another input's request.
 */
export function taggedPath(target: string): string | null {
  // The scheme in any case, as llhttp and Turbine read it (RFC 9110 4.2.3; seed 973834 flipped `http` to `httP`).
  const m = /^(?:[hH][tT][tT][pP][sS]?:\/\/[^/]*)?(\/f\/(\d+)\/s?\d+)\/(\d+)/.exec(target);
  return m && m[2] === m[3] ? m[1]! : null;
}

/** Writes the input (in its splits), and resolves when the peer closes or goes quiet. */
export function send(port: number, input: FuzzInput, quietMs = 150): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let timer: NodeJS.Timeout | null = null;
    const done = () => {
      if (timer) clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const quiet = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    };
    socket.setNoDelay(true);
    socket.on('connect', () => {
      let from = 0;
      for (const at of [...input.splits, input.bytes.length]) {
        socket.write(input.bytes.subarray(from, at));
        from = at;
      }
      quiet();
    });
    socket.on('data', quiet);
    socket.on('close', done);
    socket.on('error', done);
  });
}

/** Runs `task` over `items` with at most `width` at once. */
export async function pool<T>(items: readonly T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await task(items[next++]!);
  }));
}

export interface Verdict {
  inputs: number;
  /** Requests llhttp accepted that Turbine refused (allowed: stricter is fine). */
  refusedByTurbineOnly: number;
  /** Requests forwarded by Turbine that llhttp refused, or whose method or body differ. */
  differences: { path: string; problem: string; input: FuzzInput }[];
  /** What the backend (llhttp) could not parse: Turbine sent on something malformed. */
  backendClientErrors: string[];
}

export function compare(inputs: readonly FuzzInput[], oracle: RecordingServer, backend: RecordingServer): Verdict {
  const byId = new Map(inputs.map((i) => [i.id, i]));
  const differences: Verdict['differences'] = [];
  for (const [path, got] of backend.seen) {
    const input = byId.get(Number(path.split('/')[2]))!;
    const want = oracle.seen.get(path);
    if (!want) differences.push({ path, problem: 'forwarded, but llhttp refused it or never saw a request there', input });
    else if (want.method !== got.method) differences.push({ path, problem: `method ${got.method}, llhttp parsed ${want.method}`, input });
    else if (want.complete && got.complete && want.body !== got.body) {
      differences.push({ path, problem: `body ${JSON.stringify(got.body.slice(0, 80))}, llhttp parsed ${JSON.stringify(want.body.slice(0, 80))}`, input });
    }
  }
  let refusedByTurbineOnly = 0;
  for (const path of oracle.seen.keys()) if (!backend.seen.has(path)) refusedByTurbineOnly += 1;
  return { inputs: inputs.length, refusedByTurbineOnly, differences, backendClientErrors: backend.clientErrors };
}

/** The replay line for a failing input: seed, id and the escaped bytes. */
export function describe(seed: number, d: Verdict['differences'][number]): string {
  return `seed ${seed} input ${d.input.id} (${d.input.shapes.join(', ') || 'valid'}): ${d.path}: ${d.problem}\n  bytes: ${JSON.stringify(d.input.bytes.toString('latin1'))}`;
}

/**
 * Sends `count` generated inputs from `seed` to llhttp and through Turbine (one HTTP service whose
 * backend records what arrives), and compares what each side took to be the requests.
 */
export async function runDifferential(seed: number, count: number, width = 48): Promise<Verdict> {
  const { startHarness, app } = await import('./harness.js');
  const { freePort } = await import('./net.js');
  const oracle = new RecordingServer();
  const backend = new RecordingServer();
  await oracle.listen();
  await backend.listen();
  // Short head and client timeouts: incomplete inputs end quickly instead of holding a slot.
  const h = await startHarness({ timeoutHttpRequest: 1, timeoutClient: 2, timeoutServer: 5, activeHealthChecks: false, ejectAfterFailures: 1_000_000, maxconn: 10_000 });
  try {
    const port = await freePort();
    h.marathon.putApp(app('/fuzz', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [backend.port] }]);
    await h.waitTable((t) => t.services.length === 1, 'the fuzz service');
    const inputs = Array.from({ length: count }, (_, id) => generate(seed, id));
    await pool(inputs, width, async (input) => {
      await Promise.all([send(oracle.port, input), send(port, input)]);
    });
    // Requests Turbine is still sending on reach the backend in a moment.
    await new Promise((resolve) => setTimeout(resolve, 500));
    return compare(inputs, oracle, backend);
  } finally {
    await h.close();
    await oracle.close();
    await backend.close();
  }
}
