// What a hostile client or an odd backend cannot make the data plane do: smuggle a request past
// its framing, pile answers up in Turbine's memory, have a healthy backend blamed for the client's
// own stall, or end an exchange in a way the other side cannot tell. Each test failed before its fix.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { converse, freePort, until } from '../support/net.js';

const LABELS = { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' };

async function listening<T extends Server | ReturnType<typeof createTcpServer>>(server: T): Promise<{ server: T; port: number; stop(): void }> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server, port: (server.address() as AddressInfo).port,
    stop: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** Node's own HTTP server: it records each request as `METHOD url host=… body=<bytes>` and answers with that line. */
async function recordingBackend(bodyBytes = 0) {
  const seen: string[] = [];
  const big = Buffer.alloc(bodyBytes, 0x61);
  const backend = await listening(createServer((req, res) => {
    let length = 0;
    req.on('data', (d: Buffer) => { length += d.length; });
    req.on('end', () => {
      const line = `${req.method} ${req.url} host=${req.headers.host} body=${length}`;
      seen.push(line);
      res.end(bodyBytes > 0 ? big : line);
    });
  }));
  return { ...backend, seen };
}

/** A backend on a raw socket: `answer` gets each request head with the number of the connection it came on. */
async function rawBackend(answer: (head: string, connection: number, socket: Socket) => void) {
  let connections = 0;
  return listening(createTcpServer((socket) => {
    const id = ++connections;
    let buf = '';
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        answer(head, id, socket);
      }
    });
  }));
}

describe('hostile exchanges', () => {
  let h: Harness;
  const stops: (() => void)[] = [];

  /** A service on its own port in front of `backendPort`. */
  async function service(id: string, backendPort: number): Promise<number> {
    const port = await freePort();
    h.marathon.putApp(app(id, port, LABELS), [{ host: '127.0.0.1', ports: [backendPort] }]);
    await h.waitTable((t) => t.services.some((s) => s.appId === id), id);
    return port;
  }

  before(async () => {
    h = await startHarness({ activeHealthChecks: false });
  });
  after(async () => {
    for (const stop of stops) stop();
    await h.close();
  });

  for (const [listed, framing] of [
    ['content-length', (body: string) => `Content-Length: ${body.length}\r\n\r\n${body}`],
    ['transfer-encoding', (body: string) => `Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`],
  ] as const) {
    it(`Connection: ${listed} does not strip the request's framing: its body stays a body`, async () => {
      const backend = await recordingBackend();
      stops.push(backend.stop);
      const port = await service(`/smuggle-${listed}`, backend.port);
      const smuggled = 'GET /admin HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n';
      const answer = await converse(port, `POST /harmless HTTP/1.1\r\nHost: a\r\nConnection: ${listed}\r\n${framing(smuggled)}`, (t) => t.includes('body='));
      assert.match(answer, /^HTTP\/1\.1 200 /);
      assert.ok(answer.endsWith(`POST /harmless host=a body=${smuggled.length}`), answer);
      const victim = await converse(port, 'GET /mine HTTP/1.1\r\nHost: a\r\n\r\n', (t) => t.includes('body='));
      assert.match(victim, /GET \/mine host=a body=0$/);
      assert.deepEqual(backend.seen, [`POST /harmless host=a body=${smuggled.length}`, 'GET /mine host=a body=0']);
    });
  }

  it('a client that pipelines and never reads holds up its own requests, not Turbine\'s memory; all are answered once it reads', async () => {
    const size = 60 * 1024;
    const backend = await recordingBackend(size);
    stops.push(backend.stop);
    const port = await service('/pipeline', backend.port);
    const requests = 400;
    const client = connect(port, '127.0.0.1');
    client.pause();
    await new Promise((r) => client.once('connect', r));
    client.write('GET /p HTTP/1.1\r\nHost: p\r\n\r\n'.repeat(requests));
    // Served while nobody reads: what the kernel's buffers hold, then nothing.
    await until(() => backend.seen.length > 0, 'the first request served');
    let last = -1;
    await until(async () => {
      const now = backend.seen.length;
      await new Promise((r) => setTimeout(r, 300));
      const settled = now === last && now === backend.seen.length;
      last = now;
      return settled;
    }, 'the backend no longer asked');
    const servedUnread = backend.seen.length;
    assert.ok(servedUnread < requests / 2, `${servedUnread} of ${requests} answers made for a client that reads none`);
    let received = 0;
    client.on('data', (d: Buffer) => { received += d.length; });
    client.resume();
    await until(() => received >= requests * size, `all ${requests} answers read (${received} bytes so far)`, 20_000);
    assert.equal(backend.seen.length, requests);
    client.destroy();
  });

  it('an answer before the whole request body says Connection: close, and the connection ends after it', async () => {
    const backend = await rawBackend((_head, _id, socket) => socket.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\n\r\nlogin first\n'));
    stops.push(backend.stop);
    const port = await service('/early', backend.port);
    const text = await converse(port, 'PUT /upload HTTP/1.1\r\nHost: e\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 401 /);
    assert.match(text, /\r\nconnection: close\r\n/i);
    assert.ok(text.endsWith('login first\n'), JSON.stringify(text));
  });

  it('an HTTP/1.0 request without Host reaches an HTTP/1.1 backend with one', async () => {
    const backend = await recordingBackend();
    stops.push(backend.stop);
    const port = await service('/old', backend.port);
    const text = await converse(port, 'GET /old HTTP/1.0\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.deepEqual(backend.seen, [`GET /old host=127.0.0.1:${backend.port} body=0`]);
  });

  it('an HTTP/1.0 response with Transfer-Encoding is not trusted for reuse: its backend connection is closed after it', async () => {
    const used: Record<string, number> = {};
    const backend = await rawBackend((head, id, socket) => {
      used[head.split(' ')[1]!] = id;
      socket.write('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    });
    stops.push(backend.stop);
    const port = await service('/te10', backend.port);
    for (const path of ['/one', '/two']) {
      const text = await converse(port, `GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`);
      assert.match(text, /^HTTP\/1\.1 200 [^]*hello/);
    }
    assert.notEqual(used['/one'], used['/two'], 'the second request went on the same backend connection');
  });
});

describe('a client that stalls is not the backend\'s failure (--timeout-server shorter than --timeout-client)', () => {
  let h: Harness;
  let backend: Awaited<ReturnType<typeof rawBackend>>;
  let port = 0;
  let uploadsHeard = 0;

  before(async () => {
    h = await startHarness({ activeHealthChecks: false, timeoutServer: 0.5, timeoutClient: 2, ejectAfterFailures: 1 });
    const big = Buffer.alloc(16 * 1024 * 1024, 0x61);
    // A download answers at once with 16 MiB; an upload waits for its whole body, which never comes.
    backend = await rawBackend((head, _id, socket) => {
      if (head.startsWith('GET')) socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`), big]));
      else uploadsHeard += 1;
    });
    port = await freePort();
    h.marathon.putApp(app('/stall', port, LABELS), [{ host: '127.0.0.1', ports: [backend.port] }]);
    await h.waitTable((t) => t.services.length === 1, 'the service');
  });
  after(async () => {
    backend.stop();
    await h.close();
  });

  /** After a client's stall: it was cut as the client's timeout, and the backend stays up and unblamed. */
  async function blamedOnTheClient(client: Socket, before: number): Promise<void> {
    await until(async () => await h.metric('turbine_client_errors_total', { reason: 'client-timeout' }) > before, 'the client cut for its timeout', 6_000);
    client.destroy();
    assert.equal(await h.metric('turbine_errors_total', { kind: 'timeout' }), 0);
    assert.equal(await h.metric('turbine_backend_up'), 1);
  }

  it('a client that stops reading a download', async () => {
    const client = connect(port, '127.0.0.1');
    client.on('error', () => {});
    client.pause();
    client.on('connect', () => client.write('GET /big HTTP/1.1\r\nHost: s\r\n\r\n'));
    await blamedOnTheClient(client, 0);
  });

  it('a client that stops in the middle of an upload', async () => {
    const client = connect(port, '127.0.0.1');
    client.on('error', () => {});
    client.on('data', () => {});
    client.on('connect', () => client.write('POST /upload HTTP/1.1\r\nHost: s\r\nContent-Length: 100\r\n\r\n0123456789'));
    await until(() => uploadsHeard === 1, 'the upload reached the backend');
    await blamedOnTheClient(client, await h.metric('turbine_client_errors_total', { reason: 'client-timeout' }));
  });
});
