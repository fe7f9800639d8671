// The HTTP timeouts as a client and a backend meet them: a silent side is cut after its timeout,
// and a side that is slow but never silent for that long is not, however long the exchange lasts.
// Turbine keeps these as deadlines moved by each read and write (ClientConnection), so each test
// here fails when one kind of activity stops moving its deadline.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, rawClient, until } from '../support/net.js';

const TIMEOUT_S = 0.6;
const BIG = 32 * 1024 * 1024;

async function server(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { server: s, port: (s.address() as AddressInfo).port };
}

/** Ten 1 KiB pieces 250 ms apart: 2.5 s in all, never silent for a timeout (chunked without a length). */
function trickle(headers: Record<string, string>): Parameters<typeof createServer>[1] {
  return (_req, res) => {
    res.writeHead(200, headers);
    let sent = 0;
    const timer = setInterval(() => {
      res.write('t'.repeat(1024));
      if (++sent === 10) { clearInterval(timer); res.end(); }
    }, 250);
  };
}

/**
 * A port whose connects hang: a process that listens with a backlog of 1 and never accepts, its
 * queue filled by `fillers`. The kernel then drops further SYNs, as a host that is gone does.
 */
async function blackhole(): Promise<{ port: number; child: ChildProcess; fillers: Socket[] }> {
  const child = spawn(process.execPath, ['-e', `
    const s = require('node:net').createServer();
    s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      process.stdout.write(String(s.address().port) + '\\n', () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0));
    });`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(child.stdout!, 'data') as [Buffer];
  const port = Number(line.toString().trim());
  const fillers: Socket[] = [];
  for (let i = 0; i < 4; i += 1) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
  }
  await new Promise((r) => setTimeout(r, 200));
  return { port, child, fillers };
}

describe('HTTP timeouts: the silent side is cut, the slow one is not', () => {
  let h: Harness;
  const ports: Record<string, number> = {};
  const servers: Server[] = [];
  let hole: Awaited<ReturnType<typeof blackhole>>;

  before(async () => {
    h = await startHarness({
      timeoutClient: TIMEOUT_S, timeoutServer: TIMEOUT_S, timeoutConnect: TIMEOUT_S, timeoutHttpKeepAlive: TIMEOUT_S,
      timeoutHttpRequest: 10, activeHealthChecks: false, ejectAfterFailures: 1000,
    });
    const backends = {
      trickle: await server(trickle({ 'content-length': String(10 * 1024) })),
      chunked: await server(trickle({})),
      big: await server((_req, res) => {
        res.writeHead(200, { 'content-length': String(BIG) });
        const piece = Buffer.alloc(1024 * 1024, 'b');
        let left = BIG / piece.length;
        const more = () => { while (left > 0) { left -= 1; if (!res.write(piece)) { res.once('drain', more); return; } } res.end(); };
        more();
      }),
      sink: await server((req, res) => {
        let n = 0;
        req.on('data', (d: Buffer) => { n += d.length; });
        req.on('end', () => res.end(`got ${n}`));
      }),
      good: await server((_req, res) => res.end('ok')),
      // Reads a request head, then nothing more of it.
      deaf: await server((req) => req.socket.pause()),
      // Answers each request 450 ms after it arrives, without a body.
      pause: await server((_req, res) => { setTimeout(() => res.writeHead(204).end(), 450); }),
      // Its head 450 ms after the request, its body 450 ms after that.
      late: await server((_req, res) => {
        setTimeout(() => {
          res.writeHead(200, { 'content-length': '4' });
          res.flushHeaders();
          setTimeout(() => res.end('late'), 450);
        }, 450);
      }),
    };
    hole = await blackhole();
    for (const [name, b] of Object.entries(backends)) {
      servers.push(b.server);
      ports[name] = await freePort();
      h.marathon.putApp(app(`/${name}`, ports[name]!, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [b.port] }]);
    }
    ports.hole = await freePort();
    h.marathon.putApp(app('/hole', ports.hole, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [hole.port] }]);
    await h.waitTable((t) => t.services.length === 9, 'nine services');
  });
  after(async () => {
    for (const s of servers) { s.closeAllConnections(); s.close(); }
    for (const s of hole.fillers) s.destroy();
    hole.child.kill('SIGKILL');
    await h.close();
  });

  it('an idle keep-alive connection closes after --timeout-http-keep-alive; one that keeps asking stays open', async () => {
    const idle = rawClient(ports.good!);
    idle.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await until(() => idle.text().endsWith('ok'), 'the answer');
    const answered = Date.now();
    const waited = (await idle.closed) - answered;
    assert.ok(waited >= TIMEOUT_S * 1000 - 100 && waited < 3000, `closed ${waited} ms after its answer`);

    const busy = rawClient(ports.good!);
    for (let i = 1; i <= 6; i += 1) {
      busy.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      await until(() => busy.text().split('ok').length - 1 === i, `answer ${i}`);
      await new Promise((r) => setTimeout(r, 400));
    }
    assert.equal(busy.socket.destroyed, false, 'six requests 400 ms apart (2.4 s) on one connection');
    busy.socket.destroy();
  });

  it('a response that trickles for longer than both timeouts, never silent for one, arrives whole', async () => {
    const c = rawClient(ports.trickle!);
    c.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await until(() => c.text().endsWith('t'.repeat(1024 * 10)), 'the whole trickled body', 8000);
    assert.match(c.text(), /^HTTP\/1\.1 200/);
    c.socket.destroy();
  });

  it('the same for an HTTP/1.0 client, which gets a chunked response de-chunked', async () => {
    const c = rawClient(ports.chunked!);
    c.socket.write('GET / HTTP/1.0\r\nhost: x\r\n\r\n');
    const closed = await c.closed;
    assert.match(c.text(), /^HTTP\/1\.1 200/);
    assert.ok(c.text().endsWith(`\r\n\r\n${'t'.repeat(1024 * 10)}`), `ends ${JSON.stringify(c.text().slice(-40))} after ${closed} ms`);
  });

  it('an upload that trickles for longer than both timeouts reaches the backend whole', async () => {
    const c = rawClient(ports.sink!);
    c.socket.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 8\r\n\r\n');
    for (let i = 0; i < 8; i += 1) {
      await new Promise((r) => setTimeout(r, 250));
      c.socket.write('u');
    }
    await until(() => c.text().endsWith('got 8'), 'the backend counted 8 bytes', 5000);
    c.socket.destroy();
  });

  it('a client silent in the middle of its upload is cut after --timeout-client, and it does not count against the backend', async () => {
    const cut = await h.metric('turbine_client_errors_total', { reason: 'client-timeout' });
    const c = rawClient(ports.sink!);
    c.socket.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789');
    const sent = Date.now();
    const waited = (await c.closed) - sent;
    assert.ok(waited >= TIMEOUT_S * 1000 - 100 && waited < 4000, `cut ${waited} ms after its last byte`);
    assert.equal(c.text(), '', 'no 504 for a backend that waited for the body');
    assert.equal(await h.metric('turbine_errors_total', { service: '/sink:0', kind: 'timeout' }), 0);
    await until(async () => await h.metric('turbine_client_errors_total', { reason: 'client-timeout' }) === cut + 1, 'counted as a client timeout');
  });

  it('a backend that stops reading an upload gets 504 after --timeout-server, and the client that was held back is not blamed', async () => {
    const cut = await h.metric('turbine_client_errors_total', { reason: 'client-timeout' });
    const c = rawClient(ports.deaf!);
    // More than the sockets between client, Turbine and backend hold: Turbine has to pause the client.
    c.socket.write(`POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${64 * 1024 * 1024}\r\n\r\n`);
    c.socket.write(Buffer.alloc(64 * 1024 * 1024, 'd'));
    await until(() => c.text().startsWith('HTTP/1.1 504'), '504', 8000);
    assert.equal(await h.metric('turbine_errors_total', { service: '/deaf:0', kind: 'timeout' }), 1);
    assert.equal(await h.metric('turbine_client_errors_total', { reason: 'client-timeout' }), cut);
    c.socket.destroy();
  });

  it('a pipelined request is timed from when it goes to the backend, not from when it arrived', async () => {
    // Both arrive at once; the second goes out 450 ms later and is answered 450 ms after that:
    // within --timeout-server of its dispatch, beyond it from its arrival.
    const c = rawClient(ports.pause!);
    c.socket.write('GET /1 HTTP/1.1\r\nhost: x\r\n\r\nGET /2 HTTP/1.1\r\nhost: x\r\n\r\n');
    await until(() => c.text().split('HTTP/1.1 ').length - 1 === 2, 'two answers', 5000);
    assert.deepEqual(c.text().match(/^HTTP\/1\.1 \d+/gm), ['HTTP/1.1 204', 'HTTP/1.1 204']);
    c.socket.destroy();
  });

  it('a response head that comes late starts the client timeout afresh: its body, later still, arrives', async () => {
    const c = rawClient(ports.late!);
    c.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await until(() => c.text().endsWith('late'), 'the late body', 5000);
    assert.match(c.text(), /^HTTP\/1\.1 200/);
    c.socket.destroy();
  });

  it('a client that stops reading a large response is cut after --timeout-client; one that reads in bursts gets it all', async () => {
    const listener = { listener: `127.0.0.1:${ports.big}` };
    const cut = await h.metric('turbine_client_errors_total', { reason: 'client-timeout' });
    const stalled = rawClient(ports.big!);
    stalled.socket.pause();
    stalled.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    const started = Date.now();
    await until(async () => await h.metric('turbine_active_connections', listener) === 1, 'the connection counted');
    await until(async () => await h.metric('turbine_active_connections', listener) === 0, 'the stalled reader cut', 5000);
    assert.ok(Date.now() - started >= TIMEOUT_S * 1000 - 100, `cut after ${Date.now() - started} ms`);
    stalled.socket.destroy();
    // The backend, held back for the client, is not blamed.
    assert.equal(await h.metric('turbine_client_errors_total', { reason: 'client-timeout' }), cut + 1);
    assert.equal(await h.metric('turbine_errors_total', { service: '/big:0', kind: 'timeout' }), 0);

    const bursts = connect(ports.big!, '127.0.0.1');
    let bytes = 0;
    bursts.on('data', (d: Buffer) => { bytes += d.length; });
    bursts.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    // Reads for 50 ms, then not for 400 ms (under the timeout), until the body is in.
    while (bytes < BIG) {
      bursts.resume();
      await new Promise((r) => setTimeout(r, 50));
      bursts.pause();
      if (bursts.destroyed) break;
      await new Promise((r) => setTimeout(r, 400));
    }
    assert.ok(bytes > BIG, `${bytes} bytes (head and ${BIG} of body expected)`);
    bursts.destroy();
  });

  it('a backend that cannot be reached is given up after --timeout-connect: 503, counted as a connect failure', async () => {
    const before = await h.metric('turbine_errors_total', { service: '/hole:0', kind: 'connect' });
    const c = rawClient(ports.hole!);
    c.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    const sent = Date.now();
    await until(() => c.text().startsWith('HTTP/1.1 503'), '503', 5000);
    const waited = Date.now() - sent;
    assert.ok(waited >= TIMEOUT_S * 1000 - 100, `answered after ${waited} ms`);
    assert.equal(await h.metric('turbine_errors_total', { service: '/hole:0', kind: 'connect' }), before + 1);
    c.socket.destroy();

    // An upload that keeps coming does not put off the connect timeout.
    const upload = rawClient(ports.hole!);
    upload.socket.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 30\r\n\r\n');
    const started = Date.now();
    const trickle = setInterval(() => { if (!upload.socket.destroyed) upload.socket.write('u'); }, 150);
    try {
      await until(() => upload.text().startsWith('HTTP/1.1 503'), '503 while the upload goes on', 5000);
      assert.ok(Date.now() - started < 3000, `answered after ${Date.now() - started} ms (the body takes 4.5 s)`);
    } finally {
      clearInterval(trickle);
      upload.socket.destroy();
    }
  });
});
