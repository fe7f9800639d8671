// Turbine reads a backend's bytes into a buffer it reuses from read to read, and every client's
// bytes into one buffer all clients share. A client that reads in fits and starts leaves writes
// pending on a backend's buffer; a backend that reads an upload slowly leaves writes pending on
// client bytes; a pipelined request waits while another is served. Were the next read to land on
// bytes still waiting, a later read's bytes would go out in their place. Every byte here differs
// from its neighbours' blocks, and the receiving end checks the digest of what it got.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, untilServed } from '../support/net.js';

const MiB = 1024 * 1024;
const TOTAL = 16 * MiB;
/** Small odd-sized blocks, one per turn of the backend's event loop: Turbine gets many small reads, which do not fill a client's write queue and so do not pause reading. */
const BLOCK = 3001;

/** Block `i` of the stream: bytes no other block has at the same offsets. */
function block(i: number): Buffer {
  const b = Buffer.allocUnsafe(BLOCK);
  for (let j = 0; j < BLOCK; j += 1) b[j] = (i * 131 + j * 7 + (j >> 8)) & 0xff;
  return b;
}

const BLOCKS = Array.from({ length: Math.ceil(TOTAL / BLOCK) }, (_, i) => block(i));
const EXPECTED = createHash('sha256').update(Buffer.concat(BLOCKS).subarray(0, TOTAL)).digest('hex');

/** Writes the stream a block per turn, waiting whenever `write` asks to. */
function pump(write: (b: Buffer) => boolean, onDrain: (f: () => void) => void, end: () => void): void {
  let i = 0;
  let sent = 0;
  const go = () => {
    if (sent >= TOTAL) {
      end();
      return;
    }
    const b = BLOCKS[i]!.subarray(0, Math.min(BLOCK, TOTAL - sent));
    i += 1;
    sent += b.length;
    if (write(b)) setImmediate(go);
    else onDrain(go);
  };
  go();
}

function httpBackend(): Server {
  return createServer((req, res: ServerResponse) => {
    if (req.url === '/ready') {
      res.end('ready');
      return;
    }
    if (req.url === '/upload') {
      // Stops for a long while after the first bytes: loopback socket buffers hold megabytes, and
      // Turbine's writes must back up while the client goes on sending. Answers the digest of what arrived.
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        if (bytes < 256 * 1024 && bytes + c.length >= 256 * 1024) {
          req.pause();
          setTimeout(() => req.resume(), 1500);
        }
        hash.update(c);
        bytes += c.length;
      });
      req.on('end', () => res.end(JSON.stringify({ digest: hash.digest('hex'), bytes })));
      return;
    }
    if (req.url!.startsWith('/slow/')) {
      setTimeout(() => res.end(req.url), 50);
      return;
    }
    // /chunked: no length, so Node frames the body chunked.
    if (req.url !== '/chunked') res.setHeader('content-length', TOTAL);
    pump((b) => res.write(b), (f) => res.once('drain', f), () => res.end());
  });
}

function tcpBackend(): Server {
  return createTcpServer((socket) => {
    socket.on('error', () => socket.destroy());
    pump((b) => socket.write(b), (f) => socket.once('drain', f), () => socket.end());
  });
}

/** Sends `request` (if any), reads everything with a 20 ms pause every 512 KiB, returns the bytes after the head (all of them when `raw`). */
function stopAndGo(port: number, request: string, raw: boolean): Promise<{ digest: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => { if (request !== '') socket.write(request); });
    const chunks: Buffer[] = [];
    let sinceStop = 0;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      sinceStop += chunk.length;
      if (sinceStop >= 512 * 1024) {
        sinceStop = 0;
        socket.pause();
        setTimeout(() => socket.resume(), 20);
      }
    });
    socket.on('end', () => {
      let all = Buffer.concat(chunks);
      if (!raw) all = all.subarray(all.indexOf('\r\n\r\n') + 4);
      resolve({ digest: createHash('sha256').update(all).digest('hex'), bytes: all.length });
    });
    socket.on('error', reject);
  });
}

describe('bytes from a backend reach a client that reads in fits and starts intact', () => {
  let h: Harness;
  let httpPort: number;
  let tcpPort: number;
  const web = httpBackend();
  const raw = tcpBackend();

  before(async () => {
    await Promise.all([web, raw].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
    h = await startHarness({ activeHealthChecks: false });
    [httpPort, tcpPort] = [await freePort(), await freePort()];
    h.marathon.putApp(app('/web', httpPort, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }),
      [{ host: '127.0.0.1', ports: [(web.address() as AddressInfo).port] }]);
    h.marathon.putApp(app('/raw', tcpPort, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'tcp' }),
      [{ host: '127.0.0.1', ports: [(raw.address() as AddressInfo).port] }]);
    await untilServed(`http://127.0.0.1:${httpPort}/ready`, 'the HTTP service');
    await h.waitTable((t) => t.services.some((s) => s.appId === '/raw'), 'the TCP service');
  });

  after(async () => {
    await h.close();
    for (const s of [web, raw]) {
      if ('closeAllConnections' in s) (s as ReturnType<typeof createServer>).closeAllConnections();
      s.close();
    }
  });

  it('an HTTP response with a length', async () => {
    assert.deepEqual(await stopAndGo(httpPort, 'GET /length HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n', false), { digest: EXPECTED, bytes: TOTAL });
  });

  it('a chunked HTTP response to an HTTP/1.0 client (de-chunked)', async () => {
    assert.deepEqual(await stopAndGo(httpPort, 'GET /chunked HTTP/1.0\r\nHost: a.test\r\n\r\n', false), { digest: EXPECTED, bytes: TOTAL });
  });

  it('an upload to a backend that reads it in fits and starts (chunked)', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(httpPort, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.on('error', reject);
      socket.write('POST /upload HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n');
      pump((b) => socket.write(Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')])), (f) => socket.once('drain', f), () => socket.write('0\r\n\r\n'));
    });
    assert.deepEqual(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)), { digest: EXPECTED, bytes: TOTAL });
  });

  it('pipelined requests whose bytes arrive while an earlier one is served', async () => {
    const paths = Array.from({ length: 6 }, (_, i) => `/slow/${String(i).repeat(40 + i)}`);
    const wire = paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: a.test\r\n\r\n`).join('');
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(httpPort, '127.0.0.1');
      let got = '';
      socket.on('data', (c: Buffer) => {
        got += c.toString('latin1');
        if (got.split('HTTP/1.1 200').length > paths.length) socket.end();
      });
      socket.on('end', () => resolve(got));
      socket.on('error', reject);
      // Three pieces, cut inside requests, 10 ms apart: the first request is with the backend when the others come.
      const cuts = [0, 30, wire.length >> 1, wire.length];
      for (let i = 0; i < 3; i += 1) setTimeout(() => socket.write(wire.slice(cuts[i], cuts[i + 1])), i * 10);
    });
    const bodies = text.split('HTTP/1.1 200').slice(1).map((r) => r.slice(r.indexOf('\r\n\r\n') + 4));
    assert.deepEqual(bodies, paths);
  });

  it('a TCP service', async () => {
    assert.deepEqual(await stopAndGo(tcpPort, '', true), { digest: EXPECTED, bytes: TOTAL });
  });
});
