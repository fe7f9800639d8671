// HTTP/1.0 clients behind an HTTP/1.1 proxy: Turbine asks backends in HTTP/1.1, so a backend may
// answer chunked; a 1.0 client cannot read that framing and must get the bare body ended by the
// close (what nginx does). Keep-alive for 1.0 is opt-in (Connection: keep-alive) and only works
// when the response has a length.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, until, untilServed } from '../support/net.js';
import { fixtureCert } from '../support/tls.js';

interface RawResponse {
  head: string;
  body: string;
}

/** A client on a raw socket: what it sends is exactly what Turbine reads. */
class RawClient {
  private buf = '';
  private ended = false;
  private wake: (() => void) | null = null;
  readonly socket: Socket;
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.setEncoding('latin1');
    this.socket.on('data', (d: string) => { this.buf += d; this.wake?.(); });
    this.closed = new Promise((resolve) => this.socket.on('end', () => { this.ended = true; this.wake?.(); resolve(); }));
    this.socket.on('error', () => {});
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** The next response: its body ends after Content-Length bytes, or when Turbine closes. */
  async response(): Promise<RawResponse> {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end !== -1) {
        const head = this.buf.slice(0, end);
        const length = /^content-length: *(\d+)/im.exec(head);
        const rest = this.buf.slice(end + 4);
        if (length !== null && rest.length >= Number(length[1])) {
          this.buf = rest.slice(Number(length[1]));
          return { head, body: rest.slice(0, Number(length[1])) };
        }
        if (length === null && this.ended) {
          this.buf = '';
          return { head, body: rest };
        }
      }
      if (this.ended) throw new Error(`closed before a whole response: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((resolve) => { this.wake = resolve; });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

const header = (head: string, name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim();

describe('HTTP/1.0 clients', () => {
  let h: Harness;
  let port: number;
  let backendConnections = 0;
  const backend = createServer((req, res) => {
    if (req.url === '/cut') {
      // Chunked, then gone mid-body.
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 50);
    } else if (req.url === '/chunked') {
      // Two writes without a length: Node frames them chunked for Turbine's HTTP/1.1 request, with a trailer.
      res.setHeader('trailer', 'x-checksum');
      res.setHeader('content-type', 'text/plain');
      res.write('hello');
      res.write(' world');
      res.addTrailers({ 'x-checksum': '1' });
      res.end();
    } else {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (d: string) => { body += d; });
      req.on('end', () => res.end(`${req.method} got ${body.length} bytes`));
    }
  });
  backend.on('connection', () => { backendConnections += 1; });

  before(async () => {
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    h = await startHarness({ activeHealthChecks: false });
    port = await freePort();
    h.marathon.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }),
      [{ host: '127.0.0.1', ports: [(backend.address() as AddressInfo).port] }]);
    await untilServed(`http://127.0.0.1:${port}/length`, 'the web service');
  });

  after(async () => {
    await h.close();
    backend.closeAllConnections();
    backend.close();
  });

  it('a chunked response reaches an HTTP/1.0 client as its bare body, ended by the close', async () => {
    const client = new RawClient(port);
    client.send('GET /chunked HTTP/1.0\r\nHost: a.test\r\n\r\n');
    const res = await client.response();
    await client.closed;
    assert.match(res.head, /^HTTP\/1\.1 200 /);
    assert.equal(header(res.head, 'transfer-encoding'), undefined);
    assert.equal(header(res.head, 'content-type'), 'text/plain');
    assert.equal(header(res.head, 'connection'), 'close');
    assert.equal(res.body, 'hello world');
  });

  it('an HTTP/1.0 client asking for keep-alive still gets a chunked response ended by the close', async () => {
    const client = new RawClient(port);
    client.send('GET /chunked HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n');
    const res = await client.response();
    await client.closed;
    assert.equal(header(res.head, 'connection'), 'close');
    assert.equal(res.body, 'hello world');
  });

  it('the backend connection that answered chunked to an HTTP/1.0 client serves the next request', async () => {
    const before = backendConnections;
    for (const version of ['1.0', '1.0', '1.1']) {
      const client = new RawClient(port);
      client.send(`GET /chunked HTTP/${version}\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
      await client.response();
      await client.closed;
    }
    assert.ok(backendConnections - before <= 1, `${backendConnections - before} new backend connections for three sequential requests`);
  });

  it('an HTTP/1.0 client sees a reset, not a clean close, when the backend stops mid chunked body', async () => {
    const client = new RawClient(port);
    client.send('GET /cut HTTP/1.0\r\nHost: a.test\r\n\r\n');
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      client.socket.on('error', resolve);
      void client.closed.then(() => resolve(null));
    });
    assert.equal(error?.code, 'ECONNRESET');
  });

  it('over TLS too (HAPROXY_{n}_SSL_CERT): the client sees a reset, and Turbine serves on', async () => {
    const tlsPort = await freePort();
    h.marathon.putApp(app('/secure', tlsPort, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_0_SSL_CERT: fixtureCert('a') }),
      [{ host: '127.0.0.1', ports: [(backend.address() as AddressInfo).port] }]);
    await h.waitTable((t) => t.services.some((s) => s.appId === '/secure'), 'the TLS service');
    const ask = async (path: string) => {
      const socket = await until(() => new Promise<TLSSocket | null>((resolve) => {
        const s = tlsConnect({ port: tlsPort, host: '127.0.0.1', rejectUnauthorized: false }, () => resolve(s));
        s.once('error', () => resolve(null));
      }), 'the TLS port open');
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => { text += d; });
      socket.write(`GET ${path} HTTP/1.0\r\nHost: a.test\r\n\r\n`);
      const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
        socket.on('error', resolve);
        socket.on('end', () => resolve(null));
      });
      socket.destroy();
      return { error, text };
    };
    // A TLS socket's handle cannot be reset: asked to, Node throws, and Turbine went down with it.
    assert.equal((await ask('/cut')).error?.code, 'ECONNRESET');
    assert.match((await ask('/length')).text, /GET got 0 bytes$/, 'Turbine still serving');
    h.marathon.removeApp('/secure');
  });

  it('an HTTP/1.1 client gets the chunked framing as the backend sent it', async () => {
    const client = new RawClient(port);
    client.send('GET /chunked HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    const res = await client.response();
    await client.closed;
    assert.equal(header(res.head, 'transfer-encoding'), 'chunked');
    assert.equal(res.body, '5\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: 1\r\n\r\n');
  });

  it('an HTTP/1.0 client with Connection: keep-alive keeps its connection for responses with a length', async () => {
    const client = new RawClient(port);
    try {
      client.send('GET /length HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n');
      const first = await client.response();
      assert.equal(header(first.head, 'connection'), 'keep-alive');
      assert.equal(first.body, 'GET got 0 bytes');
      client.send('GET /length HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n');
      const second = await client.response();
      assert.equal(second.body, 'GET got 0 bytes');
    } finally {
      client.close();
    }
  });

  it('an HTTP/1.0 client without keep-alive is answered and closed', async () => {
    const client = new RawClient(port);
    client.send('GET /length HTTP/1.0\r\nHost: a.test\r\n\r\n');
    const res = await client.response();
    await client.closed;
    assert.equal(header(res.head, 'connection'), 'close');
    assert.equal(res.body, 'GET got 0 bytes');
  });

  it('an HTTP/1.0 request with a chunked body is forwarded whole, and its connection closes after the answer', async () => {
    const client = new RawClient(port);
    client.send('POST /upload HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    const res = await client.response();
    await client.closed;
    assert.equal(res.body, 'POST got 5 bytes');
    assert.equal(header(res.head, 'connection'), 'close');
  });
});
