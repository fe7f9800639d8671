// Data-plane faults and hostile clients: each test names what goes wrong and what the client sees.
// Turbine runs in this process, so the last test can count its file descriptors and heap.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, get, until } from '../support/net.js';

/** Sends raw bytes, optionally pausing after the first part, and returns all that came back before close. */
function raw(port: number, parts: string[], pauseMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('no close within 10 s')));
    socket.on('connect', async () => {
      for (const [i, part] of parts.entries()) {
        if (i > 0 && pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
        if (!socket.destroyed) socket.write(part);
      }
    });
    socket.on('data', (d: Buffer) => { text += d; });
    socket.on('close', () => resolve(text));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? resolve(text) : reject(err)));
  });
}

async function server(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { server: s, port: (s.address() as AddressInfo).port };
}

describe('backend faults and hostile clients', () => {
  let h: Harness;
  const ports: Record<string, number> = {};
  const servers: Server[] = [];
  let counting: NetServer;
  /** Bytes that reached the counting backend (a raw socket server: it cannot answer 431 itself). */
  let countedBytes = 0;

  before(async () => {
    h = await startHarness({ timeoutServer: 0.5, timeoutHttpRequest: 0.5, maxconnPerService: 1, activeHealthChecks: false, ejectAfterFailures: 1000 });
    const good = await h.httpBackend('good');
    const midway = await server((_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write('x'.repeat(1000));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const silent = await server(() => { /* accepts, reads, never answers */ });
    const resets = await server((req) => req.socket.destroy());
    const slow = await server((_req, res) => setTimeout(() => res.end('slow'), 400));
    servers.push(midway.server, silent.server, resets.server, slow.server);
    counting = createNetServer((socket) => socket.on('data', (d: Buffer) => { countedBytes += d.length; socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'); }));
    await new Promise<void>((r) => counting.listen(0, '127.0.0.1', r));
    for (const name of ['midway', 'silent', 'resets', 'slow', 'good', 'counting']) ports[name] = await freePort();
    const put = (id: string, port: number, backendPort: number) =>
      h.marathon.putApp(app(id, port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [backendPort] }]);
    put('/midway', ports.midway!, midway.port);
    put('/silent', ports.silent!, silent.port);
    put('/resets', ports.resets!, resets.port);
    put('/slow', ports.slow!, slow.port);
    put('/good', ports.good!, good.port);
    put('/counting', ports.counting!, (counting.address() as AddressInfo).port);
    await h.waitTable((t) => t.services.length === 6, 'six services');
  });
  after(async () => {
    for (const s of servers) { s.closeAllConnections(); s.close(); }
    counting.close();
    await h.close();
  });

  it('a backend killed mid-response: the client sees a cut response, not a complete one; Turbine goes on', async () => {
    await assert.rejects(get(`http://127.0.0.1:${ports.midway}/`), /terminated|closed|socket|other side/i);
    await until(async () => await h.metric('turbine_errors_total', { service: '/midway:0', kind: 'reset' }) === 1, 'the reset counted');
    assert.equal((await get(`http://127.0.0.1:${ports.good}/`)).status, 200);
  });

  it('a backend that accepts and never answers: 504 after --timeout-server', async () => {
    const res = await get(`http://127.0.0.1:${ports.silent}/`);
    assert.equal(res.status, 504);
    assert.match(res.text, /Gateway Timeout/);
  });

  it('a backend that resets the connection: 502', async () => {
    const res = await get(`http://127.0.0.1:${ports.resets}/`);
    assert.equal(res.status, 502);
    assert.match(res.text, /Bad Gateway/);
  });

  it('more requests in flight than --maxconn-per-service: 503 with a clear text', async () => {
    const first = get(`http://127.0.0.1:${ports.slow}/`);
    await new Promise((r) => setTimeout(r, 100));
    const second = await get(`http://127.0.0.1:${ports.slow}/`);
    assert.equal(second.status, 503);
    assert.match(second.text, /too many requests in flight/);
    assert.equal((await first).text, 'slow');
  });

  it('a client that sends its headers too slowly is cut off (408)', async () => {
    const reply = await raw(ports.good!, ['GET / HTTP/1.1\r\nhost: x\r\n', 'x-late: 1\r\n\r\n'], 1500);
    assert.match(reply, /^HTTP\/1\.1 408/);
  });

  it('a client that keeps its side open after Turbine has closed its own is cut 2 s later', async () => {
    const listener = { listener: `127.0.0.1:${ports.good}` };
    const socket = connect({ port: ports.good!, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => {});
    socket.resume();
    try {
      socket.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
      await new Promise((r) => socket.once('end', r));
      const ended = Date.now();
      assert.equal(await h.metric('turbine_active_connections', listener), 1);
      await until(async () => await h.metric('turbine_active_connections', listener) === 0, 'the lingering connection cut', 4_000);
      assert.ok(Date.now() - ended >= 1_500, `cut after ${Date.now() - ended} ms`);
    } finally {
      socket.destroy();
    }
  });

  it('headers over 16 KiB get 431 from Turbine: no byte reaches the backend, and it is a client error', async () => {
    const before = await h.metric('turbine_client_errors_total', { reason: 'header-too-large' });
    const reply = await raw(ports.counting!, [`GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`]);
    assert.match(reply, /^HTTP\/1\.1 431/);
    assert.equal(countedBytes, 0);
    assert.equal(await h.metric('turbine_client_errors_total', { reason: 'header-too-large' }), before + 1);
  });

  it('a malformed request line gets 400', async () => {
    assert.match(await raw(ports.good!, ['GARBAGE\r\n\r\n']), /^HTTP\/1\.1 400/);
  });

  it('request smuggling shapes are refused: Content-Length with Transfer-Encoding, and two Content-Lengths', async () => {
    const both = await raw(ports.good!, ['POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n']);
    assert.match(both, /^HTTP\/1\.1 400/);
    const twice = await raw(ports.good!, ['POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!']);
    assert.match(twice, /^HTTP\/1\.1 400/);
  });

  it('thousands of connections aborted at every stage leave no file descriptor or heap behind', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const fds = () => readdirSync('/proc/self/fd').length;
    const settle = async () => {
      for (let i = 0; i < 5; i += 1) { gc(); await new Promise((r) => setTimeout(r, 50)); }
    };
    const stages = [
      (s: ReturnType<typeof connect>) => s.destroy(),
      (s: ReturnType<typeof connect>) => { s.write('GET / HTT'); setImmediate(() => s.destroy()); },
      (s: ReturnType<typeof connect>) => { s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'); setImmediate(() => s.destroy()); },
      (s: ReturnType<typeof connect>) => { s.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n' + 'y'.repeat(5000)); setTimeout(() => s.destroy(), 5); },
      (s: ReturnType<typeof connect>) => { s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'); s.once('data', () => s.destroy()); },
    ];
    const round = async (count: number) => {
      for (let batch = 0; batch < count; batch += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, i) => new Promise<void>((resolve) => {
          const s = connect(ports.good!, '127.0.0.1');
          s.on('error', () => {});
          s.on('close', () => resolve());
          s.on('connect', () => stages[(batch + i) % stages.length]!(s));
          setTimeout(() => s.destroy(), 2000);
        })));
      }
    };
    await round(500); // warm-up: pools, code paths and caches settle first
    await settle();
    const fdBefore = fds();
    const heapBefore = process.memoryUsage().heapUsed;
    await round(3000);
    await until(async () => { await settle(); return fds() <= fdBefore + 5; }, `file descriptors back near ${fdBefore}`, 10_000);
    await settle();
    const growth = process.memoryUsage().heapUsed - heapBefore;
    assert.ok(growth < 8 * 1024 * 1024, `heap grew by ${(growth / 1048576).toFixed(1)} MiB over 3,000 aborted connections`);
    assert.equal((await get(`http://127.0.0.1:${ports.good}/`)).status, 200);
  });
});
