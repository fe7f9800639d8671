// What a hostile client or an odd backend cannot make the data plane do: smuggle a request past
// its framing, pile answers up in Turbine's memory, have a healthy backend blamed for the client's
// own stall, or end an exchange in a way the other side cannot tell. Each test failed before its fix.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { converse, freePort, rawClient, settled, until } from '../support/net.js';

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

/** A service of `h` on its own port in front of `backendPort`; its port once it is in the table. */
async function serveOn(h: Harness, id: string, backendPort: number): Promise<number> {
  const port = await freePort();
  h.marathon.putApp(app(id, port, LABELS), [{ host: '127.0.0.1', ports: [backendPort] }]);
  await h.waitTable((t) => t.services.some((s) => s.appId === id), id);
  return port;
}

describe('hostile exchanges', () => {
  let h: Harness;
  const stops: (() => void)[] = [];

  const service = (id: string, backendPort: number) => serveOn(h, id, backendPort);

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
    await settled(() => backend.seen.length, 'the backend no longer asked', 300);
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

  it('a backend that sends a second, stray response after a complete one does not hand it to another client', async () => {
    const backend = await rawBackend((head, _id, socket) => {
      const path = head.split(' ')[1]!;
      if (path === '/stray') {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfor-a\n');
        setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSTRAY\n'), 30);
      } else setTimeout(() => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length + 4}\r\n\r\nfor-${path.slice(1)}\n`), 60);
    });
    stops.push(backend.stop);
    const port = await service('/stray', backend.port);
    // a stays connected, as a browser or a pooled client does.
    const a = rawClient(port);
    a.socket.write('GET /stray HTTP/1.1\r\nHost: s\r\n\r\n');
    try {
      await until(() => a.text().endsWith('for-a\n'), 'a\'s answer');
      // Right after a's answer, before the stray comes: bob's request must not go where the stray will land.
      for (const user of ['bob', 'carol']) {
        const text = await converse(port, `GET /${user} HTTP/1.1\r\nHost: s\r\n\r\n`, (t) => /\r\n\r\n[^]*\n$/.test(t));
        assert.match(text, new RegExp(`for-${user}\\n$`), `${user} got ${JSON.stringify(text)}`);
      }
    } finally {
      a.socket.destroy();
    }
  });

  it('the backend connection a client kept is shared once that client leaves', async () => {
    const used: number[] = [];
    const backend = await rawBackend((_head, id, socket) => {
      used.push(id);
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    stops.push(backend.stop);
    const port = await service('/shared', backend.port);
    for (let i = 0; i < 3; i += 1) await converse(port, 'GET / HTTP/1.1\r\nHost: s\r\n\r\n', (t) => t.endsWith('ok'));
    assert.deepEqual(used, [1, 1, 1]);
  });

  it('clients that ask one after another share one backend connection, though each stays open', async () => {
    const opened: number[] = [];
    const backend = await rawBackend((_head, id, socket) => {
      if (!opened.includes(id)) opened.push(id);
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    stops.push(backend.stop);
    const port = await service('/sequential', backend.port);
    const clients: Socket[] = [];
    try {
      for (let i = 0; i < 6; i += 1) {
        const client = rawClient(port);
        clients.push(client.socket);
        client.socket.write('GET / HTTP/1.1\r\nHost: s\r\n\r\n');
        await until(() => client.text().endsWith('ok'), `client ${i} answered`);
        await new Promise((r) => setTimeout(r, 150)); // longer than a connection stays with its client
      }
      assert.deepEqual(opened, [1], 'one backend connection for six clients that never asked at once');
    } finally {
      for (const c of clients) c.destroy();
    }
  });

  it('a malformed chunked body that comes with its head gets the client a 502, not an empty close; the kind says bad-response', async () => {
    const backend = await rawBackend((_head, _id, socket) => socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n'));
    stops.push(backend.stop);
    const port = await service('/badchunk', backend.port);
    // HTTP/1.1 gets the head as it came, HTTP/1.0 a rebuilt one and the data de-chunked: both were empty closes.
    for (const version of ['1.1', '1.0']) {
      const text = await converse(port, `GET / HTTP/${version}\r\nHost: b\r\nConnection: close\r\n\r\n`);
      assert.match(text, /^HTTP\/1\.1 502 /, `HTTP/${version}: ${JSON.stringify(text)}`);
      assert.match(text, /malformed/);
    }
    assert.equal(await h.metric('turbine_errors_total', { service: '/badchunk:0', kind: 'bad-response' }), 2);
  });

  it('a Content-Length or a chunk size with leading zeros is read as its value (llhttp and HAProxy take them)', async () => {
    const backend = await rawBackend((head, _id, socket) => socket.write(head.startsWith('GET /cl')
      ? 'HTTP/1.1 200 OK\r\nContent-Length: 00000000000000000005\r\n\r\nhello'
      : 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000005\r\nhello\r\n0\r\n\r\n'));
    stops.push(backend.stop);
    const port = await service('/zeros', backend.port);
    for (const path of ['/cl', '/chunked']) {
      const text = await converse(port, `GET ${path} HTTP/1.1\r\nHost: z\r\n\r\n`, (t) => t.includes('hello'));
      assert.match(text, /^HTTP\/1\.1 200 [^]*hello/, `${path}: ${JSON.stringify(text)}`);
    }
  });

  it('a repeated Content-Length reaches the client once, and a 204\'s framing fields not at all (strict clients refuse them)', async () => {
    const backend = await rawBackend((head, _id, socket) => {
      const path = head.split(' ')[1]!;
      if (path === '/twice') socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello');
      else socket.write(`HTTP/1.1 204 No Content\r\n${path === '/204-length' ? 'Content-Length: 5' : 'Transfer-Encoding: chunked'}\r\n\r\n`);
    });
    stops.push(backend.stop);
    const port = await service('/framing', backend.port);
    const twice = await converse(port, 'GET /twice HTTP/1.1\r\nHost: f\r\n\r\n', (t) => t.endsWith('hello'));
    assert.equal(twice.match(/content-length/gi)?.length, 1, twice);
    for (const path of ['/204-length', '/204-chunked']) {
      const text = await converse(port, `GET ${path} HTTP/1.1\r\nHost: f\r\n\r\n`, (t) => t.endsWith('\r\n\r\n'));
      assert.match(text, /^HTTP\/1\.1 204 /);
      assert.doesNotMatch(text, /content-length|transfer-encoding/i, text);
    }
  });

  it('a body that runs until the backend closes, cut by a reset, is cut for the client too: a reset, not a clean end', async () => {
    const backend = await rawBackend((_head, _id, socket) => {
      socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart of it');
      setTimeout(() => socket.resetAndDestroy(), 100);
    });
    stops.push(backend.stop);
    const port = await service('/closecut', backend.port);
    const client = connect(port, '127.0.0.1');
    let text = '';
    client.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    const ended = new Promise<string>((resolve) => {
      client.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      client.on('end', () => resolve('end'));
    });
    client.write('GET / HTTP/1.1\r\nHost: c\r\n\r\n');
    assert.equal(await ended, 'ECONNRESET');
    assert.match(text, /part of it$/);
    client.destroy();
  });

  it('a response head over 64 KiB is refused when it comes in one read, as when it comes in several', async () => {
    const backend = await rawBackend((_head, _id, socket) => socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(70 * 1024)}\r\nContent-Length: 2\r\n\r\nok`));
    stops.push(backend.stop);
    const port = await service('/bighead', backend.port);
    const text = await converse(port, 'GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 502 /, JSON.stringify(text.slice(0, 100)));
  });

  it('interim (1xx) responses to a client that does not read hold the backend back instead of piling up in memory', async () => {
    const hint = `HTTP/1.1 103 Early Hints\r\nLink: </${'a'.repeat(4000)}>; rel=preload\r\n\r\n`;
    let written = 0;
    const backend = await rawBackend((_head, _id, socket) => {
      const flood = () => {
        while (!socket.destroyed) {
          written += hint.length;
          if (!socket.write(hint)) { socket.once('drain', flood); return; }
        }
      };
      flood();
    });
    stops.push(backend.stop);
    const port = await service('/hints', backend.port);
    const client = connect(port, '127.0.0.1');
    client.on('error', () => {});
    client.pause();
    client.on('connect', () => client.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n'));
    // What the kernel's buffers hold (a few MiB each way), then nothing: without backpressure, hundreds of MiB in seconds.
    await settled(() => written, 'the backend held back', 500, 8_000);
    client.destroy();
    assert.ok(written < 48 * 1024 * 1024, `${written} bytes of 1xx taken for a client that reads none`);
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
    port = await serveOn(h, '/stall', backend.port);
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

describe('a backend\'s answer is timed by --timeout-server (0.5 s; --timeout-connect 3 s)', () => {
  let h: Harness;
  let backend: Awaited<ReturnType<typeof rawBackend>>;
  let port = 0;

  before(async () => {
    h = await startHarness({ activeHealthChecks: false, timeoutServer: 0.5, timeoutConnect: 3, ejectAfterFailures: 1000 });
    // /trickle: a head one byte every 100 ms, never silent for the timeout; /silent: nothing.
    backend = await rawBackend((head, _id, socket) => {
      if (!head.startsWith('GET /trickle')) return;
      const bytes = `HTTP/1.1 200 OK\r\nX-Pad: ${'p'.repeat(200)}\r\nContent-Length: 2\r\n\r\nok`;
      let at = 0;
      const timer = setInterval(() => {
        if (socket.destroyed || at === bytes.length) clearInterval(timer);
        else socket.write(bytes[at++]!);
      }, 100);
    });
    port = await serveOn(h, '/timed', backend.port);
  });
  after(async () => {
    backend.stop();
    await h.close();
  });

  /** Sends `request` on `client` and waits for the next complete 504; how long it took. */
  async function timedOut(client: ReturnType<typeof rawClient>, request: string): Promise<number> {
    const answers = client.text().split('HTTP/1.1 504').length;
    const sent = Date.now();
    client.socket.write(request);
    await until(() => client.text().split('HTTP/1.1 504').length > answers && client.text().endsWith('in time\n'), 'a 504', 4_000);
    return Date.now() - sent;
  }

  it('a head trickled a byte at a time must come whole within the timeout: 504', async () => {
    const client = rawClient(port);
    const waited = await timedOut(client, 'GET /trickle HTTP/1.1\r\nHost: t\r\n\r\n');
    client.socket.destroy();
    assert.ok(waited < 2_000, `504 after ${waited} ms`);
  });

  it('on a new backend connection the server timeout counts from the connect, not after the connect timeout; the client connection stays open after the 504', async () => {
    const client = rawClient(port);
    let closed = false;
    void client.closed.then(() => { closed = true; });
    const waited = await timedOut(client, 'GET /silent HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.ok(waited < 2_000, `504 after ${waited} ms (the connect timeout is 3 s)`);
    // The 504 is not Connection: close, so the connection is the client's to use for its keep-alive time (1 s).
    assert.doesNotMatch(client.text(), /connection: close/i);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(closed, false, 'the connection closed right after the 504');
    await timedOut(client, 'GET /silent HTTP/1.1\r\nHost: t\r\n\r\n');
    client.socket.destroy();
  });
});
