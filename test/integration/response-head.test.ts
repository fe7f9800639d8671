// What a client receives of a backend's response head: as it came when nothing needs rewriting
// (the fast path: byte for byte, field case and order kept), and without hop-by-hop fields, with
// the client's own connection state, when something does.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort } from '../support/net.js';

/** Scripted answers by request path; the backend keeps its connection unless the answer closes it. */
const ANSWERS: Record<string, string> = {
  '/plain': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Mixed-Case: Kept\r\nconnection: keep-alive\r\n\r\nok',
  '/keep-alive-field': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nok',
  '/backend-closes': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
  '/http10': 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/no-body': 'HTTP/1.1 204 No Content\r\nX-Empty: yes\r\n\r\n',
};

function scriptedBackend(): Promise<Server> {
  const server = createServer((socket: Socket) => {
    let pending = '';
    socket.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const path = pending.slice(0, end).split(' ')[1]!;
        pending = pending.slice(end + 4);
        const answer = ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n';
        socket.write(answer);
        if (/connection: close/i.test(answer) || answer.startsWith('HTTP/1.0')) socket.end();
      }
    });
    socket.on('error', () => socket.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Sends requests one after another on one connection; resolves with each response's raw text. */
async function onOneConnection(port: number, paths: string[]): Promise<string[]> {
  const { connect } = await import('node:net');
  const socket = connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const out: string[] = [];
  let text = '';
  socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
  for (const path of paths) {
    text = '';
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const deadline = Date.now() + 5000;
    // Complete once the head and its Content-Length worth of body (or a bodiless status) are in.
    for (;;) {
      const end = text.indexOf('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? 0);
      if (end >= 0 && text.length >= end + 4 + length) break;
      if (Date.now() > deadline || socket.destroyed) throw new Error(`no complete answer to ${path}: ${JSON.stringify(text)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    out.push(text);
  }
  const open = !socket.destroyed;
  socket.destroy();
  if (!open) throw new Error('the client connection was closed');
  return out;
}

describe('response heads', () => {
  let h: Harness;
  let backend: Server;
  let port: number;

  before(async () => {
    h = await startHarness({ activeHealthChecks: false });
    backend = await scriptedBackend();
    port = await freePort();
    h.marathon.putApp(app('/heads', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [(backend.address() as AddressInfo).port] }]);
    await h.waitTable((t) => t.services[0]?.backends.length === 1, 'the backend');
  });
  after(async () => {
    backend.close();
    await h.close();
  });

  it('a head with nothing to rewrite reaches the client byte for byte', async () => {
    const [plain, noBody] = await onOneConnection(port, ['/plain', '/no-body']);
    assert.equal(plain, ANSWERS['/plain']);
    assert.equal(noBody, ANSWERS['/no-body']);
  });

  it('hop-by-hop fields are dropped, and the backend closing its connection does not close the client\'s', async () => {
    const [keepAlive, closes, after] = await onOneConnection(port, ['/keep-alive-field', '/backend-closes', '/plain']);
    assert.doesNotMatch(keepAlive, /keep-alive:/i);
    assert.doesNotMatch(closes, /connection:/i, 'the backend\'s Connection: close is its own business');
    assert.equal(after, ANSWERS['/plain'], 'the client connection carried on');
  });

  it('an HTTP/1.0 backend\'s answer reaches an HTTP/1.1 client as HTTP/1.1', async () => {
    const [answer] = await onOneConnection(port, ['/http10']);
    assert.match(answer!, /^HTTP\/1\.1 200 OK\r\n/);
  });
});
