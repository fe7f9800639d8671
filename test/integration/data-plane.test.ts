// The HTTP/1.1 data plane against the defects of the node:http + undici path it replaced: each
// test names a behaviour that path got wrong, over real sockets.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { converse, freePort, until } from '../support/net.js';

const count = (text: string, pattern: RegExp) => (text.match(pattern) ?? []).length;

/** A backend answering 200 with the request's method, path and Host; it counts requests and connections. */
async function recordingBackend(delayMs = 0) {
  const seen: string[] = [];
  let connections = 0;
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url} host=${req.headers.host}`);
    const body = `${req.method} ${req.url} host=${req.headers.host}`;
    setTimeout(() => res.end(body), delayMs);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    connections += 1;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const stop = () => {
    for (const s of sockets) s.destroy();
    server.close();
  };
  return { port: (server.address() as AddressInfo).port, seen, connections: () => connections, open: () => sockets.size, stop };
}

describe('HTTP data plane: defects of the old path', () => {
  let h: Harness;
  let a: Awaited<ReturnType<typeof recordingBackend>>;
  let b: Awaited<ReturnType<typeof recordingBackend>>;
  let slow: Awaited<ReturnType<typeof recordingBackend>>;
  const ports: Record<string, number> = {};

  before(async () => {
    h = await startHarness({ activeHealthChecks: false });
    [a, b, slow] = [await recordingBackend(), await recordingBackend(), await recordingBackend(300)];
    for (const name of ['a', 'slow']) ports[name] = await freePort();
    const labels = { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' };
    h.marathon.putApp(app('/a', ports.a!, { ...labels, HAPROXY_0_VHOST: 'a.test', HAPROXY_0_PATH: '/' }), [{ host: '127.0.0.1', ports: [a.port] }]);
    h.marathon.putApp(app('/b', await freePort(), { ...labels, HAPROXY_0_VHOST: 'b.test' }), [{ host: '127.0.0.1', ports: [b.port] }]);
    h.marathon.putApp(app('/secure', await freePort(), { ...labels, HAPROXY_0_VHOST: 'secure.test', HAPROXY_0_REDIRECT_TO_HTTPS: 'true' }), [{ host: '127.0.0.1', ports: [b.port] }]);
    h.marathon.putApp(app('/slow', ports.slow!, labels), [{ host: '127.0.0.1', ports: [slow.port] }]);
    await h.waitTable((t) => t.services.length === 4, 'four services');
  });
  after(async () => {
    for (const s of [a, b, slow]) s.stop();
    await h.close();
  });

  it('pipelined requests are answered in order, each by its own response', async () => {
    const text = await converse(ports.a!, ['/1', '/2', '/3'].map((p) => `GET ${p} HTTP/1.1\r\nHost: a.test\r\n\r\n`).join(''),
      (t) => count(t, /HTTP\/1\.1 200/g) === 3 && t.endsWith('host=a.test'));
    assert.deepEqual(text.match(/GET \/\d/g), ['GET /1', 'GET /2', 'GET /3']);
  });

  it('absolute-form target: its authority wins over Host for routing, and the backend sees the origin form', async () => {
    const before = b.seen.length;
    const text = await converse(h.httpPort, 'GET http://b.test/x?y HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.deepEqual(b.seen.slice(before), ['GET /x?y host=b.test']);
  });

  it('the HTTPS redirect of an absolute-form request uses its host and origin-form path', async () => {
    const text = await converse(h.httpPort, 'GET http://secure.test/p?q HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 301/);
    assert.match(text, /\r\nlocation: https:\/\/secure\.test\/p\?q\r\n/i);
  });

  it('an Upgrade answered 200 is a normal response; what the client sends next is parsed as a request (and refused)', async () => {
    const before = a.seen.length;
    const text = await converse(ports.a!, 'GET /up HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'
      + 'POST /smuggled HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 200 [^]*HTTP\/1\.1 400 /);
    assert.deepEqual(a.seen.slice(before), ['GET /up host=a.test']);
  });

  it('an idle upstream connection is kept for reuse, then closed after about 4 s', async () => {
    const idle = await recordingBackend();
    try {
      const port = await freePort();
      h.marathon.putApp(app('/idle', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [idle.port] }]);
      await h.waitTable((t) => t.services.some((s) => s.appId === '/idle'), 'the idle service');
      await converse(port, 'GET /once HTTP/1.1\r\nHost: i\r\nConnection: close\r\n\r\n');
      const answered = Date.now();
      await new Promise((r) => setTimeout(r, 3_000));
      assert.equal(idle.open(), 1, 'kept idle for reuse');
      await until(() => idle.open() === 0, 'the idle upstream connection closed', 5_000);
      assert.ok(Date.now() - answered < 6_000, `closed after ${Date.now() - answered} ms`);
    } finally {
      h.marathon.removeApp('/idle');
      idle.stop();
    }
  });

  it('a request aborted in flight leaves no stray upstream connection; the next one reuses a clean socket', async () => {
    const connectionsBefore = slow.connections();
    const socket = connect(ports.slow!, '127.0.0.1', () => socket.write('GET /abort HTTP/1.1\r\nHost: s\r\n\r\n'));
    socket.on('error', () => {});
    await until(() => slow.seen.length === 1, 'the request reached the backend');
    socket.resetAndDestroy(); // a reset, not a half-close: the client is gone

    await until(() => slow.open() === 0, 'the upstream connection of the aborted request closed');
    assert.equal(slow.connections(), connectionsBefore + 1);
    assert.equal(await h.metric('turbine_client_errors_total', { reason: 'aborted' }) >= 1, true);
    assert.equal(await h.metric('turbine_errors_total', { service: '/slow:0' }), 0);
  });
});

describe('--maxconn is enforced before a byte is parsed', () => {
  it('a connection over the limit gets 503 and none of its requests reaches a backend', async () => {
    const h = await startHarness({ maxconn: 1, activeHealthChecks: false });
    const backend = await recordingBackend();
    try {
      const port = await freePort();
      h.marathon.putApp(app('/m', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [backend.port] }]);
      await h.waitTable((t) => t.services.length === 1, 'the service');
      // The one admitted connection is answered once, then stays open, idle.
      const holder = connect(port, '127.0.0.1', () => holder.write('GET /held HTTP/1.1\r\nHost: m\r\n\r\n'));
      holder.on('error', () => {});
      await new Promise((r) => holder.once('data', r));
      const pipelined = Array.from({ length: 50 }, (_, i) => `GET /${i} HTTP/1.1\r\nHost: m\r\n\r\n`).join('');
      const refused = await converse(port, pipelined);
      assert.match(refused, /^HTTP\/1\.1 503 /);
      assert.equal(count(refused, /HTTP\/1\.1/g), 1);
      assert.deepEqual(backend.seen, ['GET /held host=m']);
      holder.destroy();
    } finally {
      backend.stop();
      await h.close();
    }
  });
});
