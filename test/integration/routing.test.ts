// Traffic through Turbine over real sockets: service ports (HTTP and TCP), virtual hosts and paths,
// app-id routing, group filtering and strict mode.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, get, tcpRoundTrip, until, untilServed } from '../support/net.js';

describe('routing through Turbine', () => {
  let h: Harness;
  const ports: Record<string, number> = {};

  before(async () => {
    h = await startHarness({ strictMode: false });
    for (const name of ['web', 'echo', 'internal', 'api', 'site', 'disabled']) ports[name] = await freePort();
    const [w1, w2, echo, internal, api, site] = await Promise.all([
      h.httpBackend('web-1'), h.httpBackend('web-2'), h.tcpBackend('echo-1'), h.httpBackend('internal-1'), h.httpBackend('api-1'), h.httpBackend('site-1'),
    ]);
    const m = h.marathon;
    m.putApp(app('/web', ports.web!, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_0_VHOST: 'web.example.com' }), [
      { host: w1!.host, ports: [w1!.port] }, { host: w2!.host, ports: [w2!.port] }]);
    m.putApp(app('/echo', ports.echo!, { HAPROXY_GROUP: 'external' }), [{ host: echo!.host, ports: [echo!.port] }]);
    m.putApp(app('/internal', ports.internal!, { HAPROXY_GROUP: 'internal' }), [{ host: internal!.host, ports: [internal!.port] }]);
    m.putApp(app('/api', ports.api!, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'web.example.com', HAPROXY_0_PATH: '-i /api /v2' }), [{ host: api!.host, ports: [api!.port] }]);
    m.putApp(app('/site', ports.site!, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'Site.Example.com,other.example.com' }), [{ host: site!.host, ports: [site!.port] }]);
    m.putApp(app('/disabled', ports.disabled!, { HAPROXY_GROUP: 'external', HAPROXY_0_ENABLED: 'false' }), [{ host: site!.host, ports: [site!.port] }]);
    await h.waitTable((t) => t.services.length === 4 && t.appCount === 6, 'four services of six apps');
  });
  after(() => h.close());

  it('an HTTP service port balances round robin over the app\'s tasks', async () => {
    const seen = [];
    for (let i = 0; i < 4; i += 1) seen.push((await get(`http://127.0.0.1:${ports.web}/hello`)).json().backend);
    assert.deepEqual(seen.sort(), ['web-1', 'web-1', 'web-2', 'web-2']);
  });

  it('the backend sees X-Forwarded-For, -Proto, -Port, -Host and the original Host', async () => {
    // node:http sends a Connection header as given (undici's client will not name other headers in it).
    const text = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: ports.web, path: '/hdr', agent: false,
        headers: { 'x-forwarded-for': '203.0.113.9', connection: 'keep-alive, x-secret', 'x-secret': 'hop' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => { body += c; });
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end();
    });
    const headers = (JSON.parse(text) as { headers: Record<string, string> }).headers;
    assert.equal(headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'http');
    assert.equal(headers['x-forwarded-port'], String(ports.web));
    assert.equal(headers['x-forwarded-host'], `127.0.0.1:${ports.web}`);
    assert.equal(headers.host, `127.0.0.1:${ports.web}`);
    assert.equal(headers['x-secret'], undefined, 'headers named in Connection are hop-by-hop');
  });

  it('a request body streams to the backend', async () => {
    const body = 'x'.repeat(200_000);
    const res = await get(`http://127.0.0.1:${ports.web}/upload`, { 'content-type': 'text/plain' }, 'POST', body);
    assert.equal(res.json().bodyBytes, 200_000);
    assert.equal(res.json().method, 'POST');
  });

  it('a chunked request body (no Content-Length) streams to the backend', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: ports.web, path: '/chunked', method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => { body += c; });
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.write('a'.repeat(1000));
      req.end('b'.repeat(2000));
    });
    assert.equal(JSON.parse(reply).bodyBytes, 3000);
  });

  it('a TCP service port pipes bytes both ways, half-close included', async () => {
    assert.equal(await tcpRoundTrip(ports.echo!, 'ping'), 'echo-1:ping');
  });

  it('the virtual host on the HTTP port reaches the app labelled with it', async () => {
    const res = await get(`http://127.0.0.1:${h.httpPort}/`, { host: 'web.example.com' });
    assert.equal(res.status, 200);
    assert.match(res.json().backend as string, /^web-/);
  });

  it('host names match without case and port', async () => {
    assert.equal((await get(`http://127.0.0.1:${h.httpPort}/`, { host: 'SITE.example.com:80' })).json().backend, 'site-1');
    assert.equal((await get(`http://127.0.0.1:${h.httpPort}/`, { host: 'other.example.com' })).json().backend, 'site-1');
  });

  it('a path prefix on the same host goes to its own app, case-insensitively with -i', async () => {
    assert.equal((await get(`http://127.0.0.1:${h.httpPort}/api/users`, { host: 'web.example.com' })).json().backend, 'api-1');
    assert.equal((await get(`http://127.0.0.1:${h.httpPort}/API/users`, { host: 'web.example.com' })).json().backend, 'api-1');
    assert.equal((await get(`http://127.0.0.1:${h.httpPort}/v2/x`, { host: 'web.example.com' })).json().backend, 'api-1');
    assert.match((await get(`http://127.0.0.1:${h.httpPort}/other`, { host: 'web.example.com' })).json().backend as string, /^web-/);
  });

  it('an unknown virtual host gets 404', async () => {
    const res = await get(`http://127.0.0.1:${h.httpPort}/`, { host: 'nobody.example.com' });
    assert.equal(res.status, 404);
    assert.match(res.text, /no service for this host/);
  });

  it('X-Marathon-App-Id on the app-id port reaches that app', async () => {
    assert.equal((await get(`http://127.0.0.1:${h.appidPort}/`, { 'x-marathon-app-id': '/site' })).json().backend, 'site-1');
    assert.equal((await get(`http://127.0.0.1:${h.appidPort}/`, { 'x-marathon-app-id': '/nope' })).status, 404);
  });

  it('an app of another group gets no listener', async () => {
    await assert.rejects(get(`http://127.0.0.1:${ports.internal}/`), /ECONNREFUSED/);
  });

  it('HAPROXY_0_ENABLED=false gets no listener', async () => {
    await assert.rejects(get(`http://127.0.0.1:${ports.disabled}/`), /ECONNREFUSED/);
  });

  it('/routes shows the table with backends and their state', async () => {
    const routes = (await get(`${h.admin}/routes`)).json<{ services: { id: string; mode: string; backends: { state: string }[] }[] }>();
    const web = routes.services.find((s) => s.id === '/web:0')!;
    assert.equal(web.mode, 'http');
    assert.deepEqual(web.backends.map((b) => b.state), ['up', 'up']);
  });

  it('marathon-lb admin endpoints answer with their meaning', async () => {
    assert.equal((await get(`${h.admin}/_haproxy_health_check`)).status, 200);
    // The maps exist with --haproxy-map only, as marathon-lb's map files do.
    assert.equal((await get(`${h.admin}/_haproxy_getvhostmap`)).text, '');
    assert.equal((await get(`${h.admin}/_haproxy_getappmap`)).text, '');
    assert.equal((await get(`${h.admin}/_haproxy_getpids`)).text.trim(), String(process.pid));
    const config = await get(`${h.admin}/_haproxy_getconfig`);
    assert.equal(config.status, 501);
    assert.match(config.text, /GET \/routes/);
  });

  it("with --haproxy-map, the map endpoints give marathon-lb's map files: host or app id, a space, the backend as the stats CSV names it", async () => {
    const h2 = await startHarness({ haproxyMap: true });
    try {
      const [plainPort, pathPort] = [await freePort(), await freePort()];
      const b = await h2.httpBackend('mapped');
      h2.marathon.putApp(app('/shop/web', plainPort, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'shop.test' }), [{ host: b.host, ports: [b.port] }]);
      h2.marathon.putApp(app('/api', pathPort, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'shop.test', HAPROXY_0_PATH: '/api' }), [{ host: b.host, ports: [b.port] }]);
      // An app without tasks is left out, as marathon-lb leaves it out of its config.
      h2.marathon.putApp(app('/idle', await freePort(), { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'idle.test' }), []);
      await h2.waitTable((t) => t.services.filter((s) => s.backends.length > 0).length === 2 && t.services.some((s) => s.appId === '/idle'), 'three services, two with tasks');
      assert.equal((await get(`${h2.admin}/_haproxy_getvhostmap`)).text, `shop.test shop_web_${plainPort}\n`, 'only the plain virtual host is in the map');
      assert.equal((await get(`${h2.admin}/_haproxy_getappmap`)).text, `/api api_${pathPort}\n/shop/web shop_web_${plainPort}\n`);
      assert.match((await get(`${h2.admin}/haproxy?stats;csv`)).text, new RegExp(`^shop_web_${plainPort},`, 'm'), 'the same backend name as the stats CSV');
    } finally {
      await h2.close();
    }
  });
});

describe('virtual host and bind details', () => {
  it('a *.example.com virtual host serves its subdomains; an exact host wins over the wildcard', async () => {
    const h = await startHarness();
    try {
      const [wild, exact] = [await h.httpBackend('wild'), await h.httpBackend('exact')];
      h.marathon.putApp(app('/wild', await freePort(), { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: '*.example.com' }), [{ host: wild.host, ports: [wild.port] }]);
      h.marathon.putApp(app('/exact', await freePort(), { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'api.example.com' }), [{ host: exact.host, ports: [exact.port] }]);
      await h.waitTable((t) => t.services.length === 2, 'two services');
      assert.equal((await get(`http://127.0.0.1:${h.httpPort}/`, { host: 'shop.example.com' })).json().backend, 'wild');
      assert.equal((await get(`http://127.0.0.1:${h.httpPort}/`, { host: 'api.example.com' })).json().backend, 'exact');
      assert.equal((await get(`http://127.0.0.1:${h.httpPort}/`, { host: 'example.com' })).status, 404);
    } finally {
      await h.close();
    }
  });

  it('HAPROXY_0_REDIRECT_TO_HTTPS: the HTTP virtual host answers 301 to https; the service port still serves', async () => {
    const h = await startHarness();
    try {
      const port = await freePort();
      const b = await h.httpBackend('secure');
      h.marathon.putApp(app('/secure', port, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'secure.example.com', HAPROXY_0_REDIRECT_TO_HTTPS: 'true' }), [{ host: b.host, ports: [b.port] }]);
      h.marathon.putApp(app('/sloppy', await freePort(), { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'sloppy.example.com', HAPROXY_0_REDIRECT_TO_HTTPS: 'yes please' }), [{ host: b.host, ports: [b.port] }]);
      // Another app claims a path on the same host without the label: the host's redirect covers it too (marathon-lb's rule is by host).
      h.marathon.putApp(app('/api', await freePort(), { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'secure.example.com', HAPROXY_0_PATH: '/api' }), [{ host: b.host, ports: [b.port] }]);
      await h.waitTable((t) => t.services.length === 3, 'three services');
      const api = await get(`http://127.0.0.1:${h.httpPort}/api/orders`, { host: 'secure.example.com' });
      assert.equal(api.status, 301);
      assert.equal(api.headers.location, 'https://secure.example.com/api/orders');
      const res = await get(`http://127.0.0.1:${h.httpPort}/cart?item=3`, { host: 'secure.example.com:80' });
      assert.equal(res.status, 301);
      assert.equal(res.headers.location, 'https://secure.example.com/cart?item=3');
      assert.equal(b.hits(), 0);
      await untilServed(`http://127.0.0.1:${port}/`, 'the service port serving');
      assert.equal((await get(`http://127.0.0.1:${h.httpPort}/`, { host: 'sloppy.example.com' })).status, 200, 'a malformed value is ignored');
      assert.ok(h.turbine.table()!.warnings.some((w) => w.appId === '/sloppy' && w.label === 'HAPROXY_0_REDIRECT_TO_HTTPS'));
      h.marathon.removeApp('/secure');
      await until(async () => (await get(`http://127.0.0.1:${h.httpPort}/api/orders`, { host: 'secure.example.com' })).status === 200, 'the host no longer redirected once its redirecting app left');
    } finally {
      await h.close();
    }
  });

  it('HAPROXY_0_STICKY: a cookie keeps a client on one backend, hidden from the backend, until that backend goes', async () => {
    const h = await startHarness();
    try {
      const port = await freePort();
      const [a, b] = [await h.httpBackend('a'), await h.httpBackend('b')];
      h.marathon.putApp(app('/sticky', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_0_STICKY: 'true' }),
        [{ host: a.host, ports: [a.port] }, { host: b.host, ports: [b.port] }]);
      await untilServed(`http://127.0.0.1:${port}/`, 'served');
      const first = await get(`http://127.0.0.1:${port}/`);
      const setCookie = String(first.headers['set-cookie']);
      const cookie = /mesosphere_server_id=[^;]+/.exec(setCookie)?.[0];
      assert.ok(cookie, `no sticky cookie in ${setCookie}`);
      assert.equal(first.headers['cache-control'], 'private');
      const pinned = first.json().backend as string;
      for (let i = 0; i < 8; i += 1) {
        const res = await get(`http://127.0.0.1:${port}/`, { cookie: `theme=dark; ${cookie}` });
        const seen = res.json<{ backend: string; headers: Record<string, string> }>();
        assert.equal(seen.backend, pinned);
        assert.equal(seen.headers.cookie, 'theme=dark', 'the backend sees its cookies, not Turbine\'s');
        assert.equal(res.headers['set-cookie'], undefined, 'a pinned client is not sent the cookie again');
      }
      const spread = new Set<string>();
      for (let i = 0; i < 6; i += 1) spread.add((await get(`http://127.0.0.1:${port}/`)).json().backend as string);
      assert.deepEqual([...spread].sort(), ['a', 'b'], 'clients without the cookie are balanced');
      const task = h.marathon.tasksOf('/sticky').find((t) => t.ports[0] === (pinned === 'a' ? a.port : b.port))!;
      h.marathon.killTask(task.id);
      await h.waitTable((t) => t.services[0]!.backends.length === 1, 'the pinned task gone');
      const moved = await get(`http://127.0.0.1:${port}/`, { cookie: cookie! });
      assert.notEqual(moved.json().backend, pinned);
      assert.match(String(moved.headers['set-cookie']), /mesosphere_server_id=/, 'a new cookie for the new backend');
    } finally {
      await h.close();
    }
  });

  it('HAPROXY_0_BIND_ADDR binds the service port to that address only', async () => {
    const h = await startHarness({ bind: '0.0.0.0' });
    try {
      const port = await freePort();
      const b = await h.httpBackend('bound');
      h.marathon.putApp(app('/bound', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_0_BIND_ADDR: '127.0.0.2' }), [{ host: b.host, ports: [b.port] }]);
      await untilServed(`http://127.0.0.2:${port}/`, 'served on 127.0.0.2');
      await assert.rejects(get(`http://127.0.0.1:${port}/`), /ECONNREFUSED/);
    } finally {
      await h.close();
    }
  });
});

describe('strict mode', () => {
  it('serves only ports with HAPROXY_{n}_ENABLED=true', async () => {
    const h = await startHarness({ strictMode: true });
    try {
      const [on, off] = [await freePort(), await freePort()];
      const b = await h.httpBackend('b');
      h.marathon.putApp(app('/on', on, { HAPROXY_GROUP: 'external', HAPROXY_0_ENABLED: 'true', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      h.marathon.putApp(app('/off', off, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      await h.waitTable((t) => t.appCount === 2, 'both apps');
      assert.equal((await get(`http://127.0.0.1:${on}/`)).json().backend, 'b');
      await assert.rejects(get(`http://127.0.0.1:${off}/`), /ECONNREFUSED/);
    } finally {
      await h.close();
    }
  });
});
