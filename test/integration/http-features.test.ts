// marathon-lb's per-port HTTP labels, applied by Turbine's data plane: what a client sees.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, get, tcpRoundTrip } from '../support/net.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('HTTP feature labels', () => {
  let h: Harness;
  const ports: Record<string, number> = {};
  let locations: Server;

  before(async () => {
    h = await startHarness({ activeHealthChecks: false });
    const web = await h.httpBackend('web');
    const tcp = await h.tcpBackend('tcp');
    const guarded = await h.httpBackend('guarded');
    locations = createServer((req, res) => {
      res.writeHead(302, { location: req.url === '/abs' ? 'http://app.test:8080/elsewhere' : '/login' });
      res.end();
    });
    await new Promise<void>((r) => locations.listen(0, '127.0.0.1', r));
    const locationsPort = (locations.address() as AddressInfo).port;
    const sha512 = execFileSync('openssl', ['passwd', '-6', '-salt', 'saltsalt', 's3cret'], { encoding: 'utf8' }).trim();
    for (const name of ['auth', 'acl', 'tcpAcl', 'hsts', 'proxypass', 'revproxy', 'redir']) ports[name] = await freePort();
    const http = { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_0_VHOST: 'app.test' };
    const at = (port: number) => [{ host: '127.0.0.1', ports: [port] }];
    h.marathon.putApp(app('/auth', ports.auth!, { ...http, HAPROXY_0_AUTH: `private area:alice:${sha512}` }), at(web.port));
    h.marathon.putApp(app('/acl', ports.acl!, { ...http, HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL: '10.0.0.0/8' }), at(guarded.port));
    h.marathon.putApp(app('/tcp-acl', ports.tcpAcl!, { HAPROXY_GROUP: 'external', HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL: '10.0.0.0/8' }), at(tcp.port));
    h.marathon.putApp(app('/hsts', ports.hsts!, { ...http, HAPROXY_0_USE_HSTS: 'true' }), at(web.port));
    h.marathon.putApp(app('/proxypass', ports.proxypass!, { ...http, HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH: '/api' }), at(web.port));
    h.marathon.putApp(app('/revproxy', ports.revproxy!, { ...http, HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH: '/app' }), at(locationsPort));
    h.marathon.putApp(app('/redir', ports.redir!, { ...http, HAPROXY_0_HTTP_BACKEND_REDIR: '/home' }), at(web.port));
    await h.waitTable((t) => t.services.length === 7, 'seven services');
  });
  after(async () => {
    locations.close();
    await h.close();
  });

  it('AUTH: 401 with the realm without credentials or with a wrong password; the right password passes', async () => {
    const url = `http://127.0.0.1:${ports.auth}/`;
    const none = await get(url);
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Basic realm="private area"');
    assert.equal((await get(url, { authorization: basic('alice', 'wrong') })).status, 401);
    assert.equal((await get(url, { authorization: basic('bob', 's3cret') })).status, 401);
    assert.equal((await get(url, { authorization: basic('alice', 's3cret') })).status, 200);
  });

  it('NETWORK_ALLOWED_ACL: a client outside the allowed networks gets 403 (HTTP) or a refused connection (TCP)', async () => {
    const res = await get(`http://127.0.0.1:${ports.acl}/`);
    assert.equal(res.status, 403);
    assert.equal(h.backends.find((b) => b.name === 'guarded')!.hits(), 0, 'nothing reached the backend');
    assert.equal(await tcpRoundTrip(ports.tcpAcl!, 'hello').catch(() => ''), '', 'closed without an answer');
    assert.equal(h.backends.find((b) => b.name === 'tcp')!.hits(), 0, 'no connection reached the TCP backend');
  });

  it('USE_HSTS: responses carry Strict-Transport-Security', async () => {
    assert.equal((await get(`http://127.0.0.1:${ports.hsts}/`)).headers['strict-transport-security'], 'max-age=15768000');
  });

  it('PROXYPASS_PATH: the backend sees the path without the prefix and the virtual host as Host', async () => {
    const seen = (await get(`http://127.0.0.1:${ports.proxypass}/api/users?x=1`)).json<{ path: string; headers: Record<string, string> }>();
    assert.equal(seen.path, '/users?x=1');
    assert.equal(seen.headers.host, 'app.test');
  });

  it("REVPROXY_PATH: a backend's Location on the app's own paths or virtual host becomes the configured path", async () => {
    assert.equal((await get(`http://127.0.0.1:${ports.revproxy}/`)).headers.location, '/app');
    assert.equal((await get(`http://127.0.0.1:${ports.revproxy}/abs`)).headers.location, '/app');
  });

  it('HTTP_BACKEND_REDIR: / on the virtual host answers 301 to the path; other paths are forwarded', async () => {
    const root = await get(`http://127.0.0.1:${ports.redir}/`, { host: 'app.test' });
    assert.equal(root.status, 301);
    assert.equal(root.headers.location, '/home');
    assert.equal((await get(`http://127.0.0.1:${ports.redir}/other`, { host: 'app.test' })).status, 200);
  });
});

describe('AUTH on a whole virtual host', () => {
  it("guards the paths other apps claim on that host, as marathon-lb's rule by host does; other hosts, and the host once the app leaves, need none", async () => {
    const h = await startHarness({ activeHealthChecks: false });
    try {
      const [shop, api] = [await h.httpBackend('shop'), await h.httpBackend('api')];
      const sha512 = execFileSync('openssl', ['passwd', '-6', '-salt', 'saltsalt', 's3cret'], { encoding: 'utf8' }).trim();
      const at = (port: number) => [{ host: '127.0.0.1', ports: [port] }];
      h.marathon.putApp(app('/shop', await freePort(), { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'shop.test', HAPROXY_0_AUTH: `shop:alice:${sha512}` }), at(shop.port));
      h.marathon.putApp(app('/api', await freePort(), { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'shop.test,api.test', HAPROXY_0_PATH: '/api' }), at(api.port));
      await h.waitTable((t) => t.services.length === 2, 'two services');
      const url = `http://127.0.0.1:${h.httpPort}/api/orders`;
      const refused = await get(url, { host: 'shop.test' });
      assert.equal(refused.status, 401);
      assert.equal(refused.headers['www-authenticate'], 'Basic realm="shop"');
      assert.equal(api.hits(), 0, 'nothing reached the /api backend');
      const allowed = await get(url, { host: 'shop.test', authorization: basic('alice', 's3cret') });
      assert.equal(allowed.status, 200);
      assert.equal(api.hits(), 1, 'the /api backend served it');
      assert.equal((await get(url, { host: 'api.test' })).status, 200, 'another host of the /api app needs no credentials');
      h.marathon.removeApp('/shop');
      await h.waitTable((t) => t.services.length === 1, 'the guarding app gone');
      assert.equal((await get(url, { host: 'shop.test' })).status, 200, 'the host is no longer guarded');
    } finally {
      await h.close();
    }
  });
});
