// Requests Turbine refuses, or cannot send as they are, are the client's fault: they get an answer
// of their own, are counted as client errors, and never take a healthy backend out of rotation.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, get } from '../support/net.js';

/** Writes `head`, then `body` once the proxy has answered 100 Continue (or at once when none comes). */
function exchange(port: number, head: string, body = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let bodySent = false;
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer within 5 s')));
    socket.on('connect', () => {
      socket.write(head);
      if (!/expect: 100-continue/i.test(head)) {
        bodySent = true;
        socket.end(body);
      }
    });
    socket.on('data', (d: Buffer) => {
      text += d;
      if (!bodySent && text.startsWith('HTTP/1.1 100')) {
        bodySent = true;
        socket.write(body);
      }
    });
    socket.on('close', () => resolve(text));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve(text) : reject(err)));
  });
}

describe('client faults never count against a backend', () => {
  let h: Harness;
  let port = 0;

  before(async () => {
    h = await startHarness({ ejectAfterFailures: 1, activeHealthChecks: false });
    const a = await h.httpBackend('a');
    port = await freePort();
    h.marathon.putApp(app('/svc', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [a.port] }]);
    await h.waitTable((t) => t.services.length === 1, 'the service');
  });
  after(() => h.close());

  it('two Host headers: 400 from Turbine, the backend never sees it', async () => {
    const text = await exchange(port, 'GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.equal(h.backends[0]!.hits(), 0);
  });

  it('OPTIONS * is forwarded in asterisk form and answered by the backend', async () => {
    const text = await exchange(port, 'OPTIONS * HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /"method":"OPTIONS","path":"\*"/);
    assert.equal(h.backends[0]!.hits(), 1);
  });

  it('Transfer-Encoding other than plain chunked is refused, not forwarded without its coding', async () => {
    const gzip = await exchange(port, 'POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', '0\r\n\r\n');
    assert.match(gzip, /^HTTP\/1\.1 501 /);
    const notLast = await exchange(port, 'POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', '0\r\n\r\n');
    assert.match(notLast, /^HTTP\/1\.1 400 /);
    assert.equal(h.backends[0]!.hits(), 1);
  });

  it('an upload with Expect: 100-continue reaches the backend whole', async () => {
    const body = 'x'.repeat(5000);
    const text = await exchange(port, `POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`, body);
    assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.match(text, /"bodyBytes":5000/);
    // The backend itself saw the expectation and answered the 100 (Turbine passes it through).
    assert.match(text, /"expect":"100-continue"/);
  });

  it('after those requests the backend is still in rotation and the refusals are client errors', async () => {
    assert.equal((await get(`http://127.0.0.1:${port}/`)).status, 200);
    assert.equal(await h.metric('turbine_backend_up', { backend: h.backends[0]!.host + ':' + h.backends[0]!.port }), 1);
    assert.equal(await h.metric('turbine_errors_total', { service: '/svc:0' }), 0);
    assert.ok(await h.metric('turbine_client_errors_total', { reason: 'bad-request' }) >= 2);
    assert.equal(await h.metric('turbine_client_errors_total', { reason: 'unsupported-transfer-coding' }), 1);
  });
});
