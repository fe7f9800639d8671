// The WebSocket row's two ends, small enough to read (RFC 6455 text frames under 126 bytes, no
// fragmentation, no extensions), run as their own processes so the bench can pin them:
//   node dist/bench/websocket.js server PORT
//   node dist/bench/websocket.js client PORT CONNECTIONS SECONDS SIZE
// The server echoes each message. Each client connection keeps one message in flight and sends the
// next when its echo is back; the client prints {messages, seconds, p50ms, p99ms, errors} as JSON.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OPCODE_TEXT = 0x81; // FIN + text
const MASK_BIT = 0x80;

/** One frame's bytes: clients must mask (RFC 6455 5.3). The key is all zeros, which leaves the payload as it is: proxies do not look. */
function frame(payload: Buffer, masked: boolean): Buffer {
  if (payload.length >= 126) throw new Error('frames of 126 bytes and more are not needed here');
  const head = masked ? Buffer.from([OPCODE_TEXT, MASK_BIT | payload.length, 0, 0, 0, 0]) : Buffer.from([OPCODE_TEXT, payload.length]);
  return Buffer.concat([head, payload]);
}

/** Complete frames at the start of `buf` (payloads unmasked) and the bytes left over. */
function readFrames(buf: Buffer): { payloads: Buffer[]; rest: Buffer } {
  const payloads: Buffer[] = [];
  let p = 0;
  while (buf.length - p >= 2) {
    const length = buf[p + 1]! & 0x7f;
    if (length >= 126) throw new Error('unexpected long frame');
    const masked = (buf[p + 1]! & MASK_BIT) !== 0;
    const start = p + 2 + (masked ? 4 : 0);
    if (buf.length < start + length) break;
    const payload = Buffer.from(buf.subarray(start, start + length));
    if (masked) for (let i = 0; i < length; i += 1) payload[i]! ^= buf[p + 2 + (i % 4)]!;
    payloads.push(payload);
    p = start + length;
  }
  return { payloads, rest: buf.subarray(p) };
}

function serve(port: number): void {
  const server = createServer((_req, res) => res.writeHead(426).end());
  server.on('upgrade', (req, socket: Socket) => {
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.setNoDelay(true);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      const { payloads, rest } = readFrames(pending.length === 0 ? chunk : Buffer.concat([pending, chunk]));
      pending = rest;
      for (const payload of payloads) socket.write(frame(payload, false));
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(port, '127.0.0.1');
}

interface ClientResult { messages: number; seconds: number; p50ms: number; p99ms: number; errors: number }

async function client(port: number, connections: number, seconds: number, size: number): Promise<ClientResult> {
  const message = frame(Buffer.alloc(size, 0x61), true);
  const rtts: number[] = [];
  let errors = 0;
  let running = true;
  const open = (): Promise<Socket> => new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.setNoDelay(true);
      socket.write(`GET /echo HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n`
        + `sec-websocket-version: 13\r\nsec-websocket-key: ${randomBytes(16).toString('base64')}\r\n\r\n`);
    });
    let head = '';
    const onHead = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onHead);
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`no upgrade: ${head.slice(0, 80)}`));
      else resolve(socket);
    };
    socket.on('data', onHead);
    socket.once('error', reject);
  });
  const sockets = await Promise.all(Array.from({ length: connections }, open));
  const started = performance.now();
  await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => {
    let pending: Buffer = Buffer.alloc(0);
    let sentAt = performance.now();
    const send = () => {
      sentAt = performance.now();
      socket.write(message);
    };
    socket.on('data', (chunk: Buffer) => {
      const { payloads, rest } = readFrames(pending.length === 0 ? chunk : Buffer.concat([pending, chunk]));
      pending = rest;
      if (payloads.length === 0) return;
      rtts.push(performance.now() - sentAt);
      if (running) send();
      else {
        socket.destroy();
        resolve();
      }
    });
    socket.on('error', () => {}); // counted on close
    socket.on('close', () => {
      if (running) errors += 1;
      resolve();
    });
    send();
  })).concat(new Promise<void>((resolve) => setTimeout(() => { running = false; resolve(); }, seconds * 1000))));
  const elapsed = (performance.now() - started) / 1000;
  rtts.sort((a, b) => a - b);
  const at = (q: number) => rtts[Math.min(rtts.length - 1, Math.ceil(q * rtts.length) - 1)] ?? NaN;
  return { messages: rtts.length, seconds: elapsed, p50ms: at(0.5), p99ms: at(0.99), errors };
}

const [role, ...rest] = process.argv.slice(2);
if (role === 'server') serve(Number(rest[0]));
else if (role === 'client') {
  const [port, connections, seconds, size] = rest.map(Number) as [number, number, number, number];
  client(port, connections, seconds, size).then((r) => {
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  }, (err: Error) => {
    process.stderr.write(`websocket client: ${err.message}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write('usage: websocket.js server PORT | client PORT CONNECTIONS SECONDS SIZE\n');
  process.exit(2);
}
