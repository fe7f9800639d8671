// One backend of a service is dead (its port refuses). Clients should not notice where a retry is
// safe, get a clear status where it is not, and the dead backend is ejected after a few failures.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, get, tcpRoundTrip } from '../support/net.js';

describe('a dead backend among live ones', () => {
  let h: Harness;
  let dead: number;
  // Health is kept per address (one host:port is one process), so the ejection test has its own.
  let deadForPost: number;
  let deadForGet: number;
  const ports: Record<string, number> = {};

  before(async () => {
    h = await startHarness({ ejectAfterFailures: 3, ejectSeconds: 60, activeHealthChecks: false });
    dead = await freePort(); // claimed and never listened on: connections are refused
    deadForPost = await freePort();
    deadForGet = await freePort();
    for (const name of ['tcp', 'http', 'post', 'ws']) ports[name] = await freePort();
    const [echo, web] = [await h.tcpBackend('echo'), await h.httpBackend('web')];
    const withDead = (b: { host: string; port: number }, port = dead) => [{ host: '127.0.0.1', ports: [port] }, { host: b.host, ports: [b.port] }];
    h.marathon.putApp(app('/tcp', ports.tcp!, { HAPROXY_GROUP: 'external' }), withDead(echo));
    h.marathon.putApp(app('/http', ports.http!, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), withDead(web, deadForGet));
    h.marathon.putApp(app('/post', ports.post!, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), withDead(web, deadForPost));
    h.marathon.putApp(app('/ws', ports.ws!, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [dead] }]);
    await h.waitTable((t) => t.services.length === 4, 'four services');
  });
  after(() => h.close());

  it('TCP: a refused connect is retried on the live backend; every connection gets through', async () => {
    for (let i = 0; i < 6; i += 1) assert.equal(await tcpRoundTrip(ports.tcp!, `m${i}`), `echo:m${i}`);
  });

  it('HTTP GET: a refused connect is retried on the live backend; every request gets 200', async () => {
    for (let i = 0; i < 6; i += 1) assert.equal((await get(`http://127.0.0.1:${ports.http}/`)).status, 200);
    // The dead backend was really picked (and refused): the 200s above went through a retry.
    assert.ok(await h.metric('turbine_errors_total', { service: '/http:0', kind: 'connect' }) >= 1);
  });

  it('HTTP POST with a body is not retried (503), and the dead backend is ejected after 3 failures', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i += 1) statuses.push((await get(`http://127.0.0.1:${ports.post}/`, {}, 'POST', 'payload')).status);
    // Round robin alternates, so failures come early; after the dead backend's 3rd failure it is out.
    assert.ok(statuses.includes(503), `no 503 in ${statuses}`);
    assert.deepEqual(statuses.slice(-4), [200, 200, 200, 200]);
    const routes = (await get(`${h.admin}/routes`)).json<{ services: { id: string; backends: { address: string; reasons: string[] }[] }[] }>();
    const post = routes.services.find((s) => s.id === '/post:0')!;
    assert.deepEqual(post.backends.find((b) => b.address === `127.0.0.1:${deadForPost}`)!.reasons, ['ejected']);
    assert.equal(await h.metric('turbine_backend_down_reason', { service: '/post:0', backend: `127.0.0.1:${deadForPost}`, reason: 'ejected' }), 1);
    assert.equal(await h.metric('turbine_backend_up', { service: '/post:0', backend: `127.0.0.1:${deadForPost}` }), 0);
  });

  it('an upgrade to a backend that refuses gets 503', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(ports.ws!, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n'));
      let text = '';
      socket.on('data', (d: Buffer) => { text += d; });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 503/);
  });
});
