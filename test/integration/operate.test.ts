// What an operator sees: an honest health check, every table change in /routes, the ejection cap,
// the admin endpoints' replies.
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, get, rawClient, until } from '../support/net.js';

interface RoutesView {
  services: { id: string; panic: boolean; ejectionCapped: boolean; excluded: { taskId: string; reason: string }[]; backends: { address: string; state: string; reasons: string[] }[] }[];
}

const hold = async (port: number): Promise<Server> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
};

describe('operating Turbine', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  it("a service port another process holds: the health check stays 200 and names it, other apps are served, and the port is served once freed", async () => {
    const port = await freePort();
    const squatter = await hold(port);
    const [b, other] = [await h.httpBackend('held'), await h.httpBackend('unaffected')];
    const otherPort = await freePort();
    h.marathon.putApp(app('/held', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
    h.marathon.putApp(app('/unaffected', otherPort, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: other.host, ports: [other.port] }]);
    // One app's port must not take every Turbine out of the balancer in front (marathon-lb's HAProxy keeps serving what it has).
    const health = await until(async () => {
      const r = await get(`${h.admin}/_haproxy_health_check`);
      const body = r.json<{ status: string; listeners: { key: string; error: string }[] }>();
      return body.listeners.some((l) => l.key.endsWith(`:${port}`)) ? { status: r.status, body } : null;
    }, 'the held port named in the health detail');
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    assert.match(health.body.listeners.find((l) => l.key.endsWith(`:${port}`))!.error, /EADDRINUSE|in use/i);
    assert.equal((await get(`http://127.0.0.1:${otherPort}/`)).json().backend, 'unaffected');
    await new Promise((resolve) => squatter.close(resolve));
    await until(async () => (await get(`${h.admin}/_haproxy_health_check`)).json<{ listeners: unknown[] }>().listeners.length === 0, 'nothing unbound once the port is freed', 10_000);
    assert.equal((await get(`http://127.0.0.1:${port}/`)).json().backend, 'held');
    h.marathon.removeApp('/held');
    h.marathon.removeApp('/unaffected');
  });

  it("a task killed while a request to it is in flight: the request's answer is counted, and the backend's series leave /metrics after --metrics-retention", async () => {
    const h2 = await startHarness({ metricsRetention: 1.5 });
    let held: ServerResponse | null = null;
    const slow = createHttpServer((_req, res) => { held = res; });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const slowPort = (slow.address() as AddressInfo).port;
    try {
      const port = await freePort();
      const steady = await h2.httpBackend('steady');
      h2.marathon.putApp(app('/killed', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_0_BALANCE: 'roundrobin' }),
        [{ host: '127.0.0.1', ports: [steady.port] }, { host: '127.0.0.1', ports: [slowPort] }]);
      await h2.waitTable((t) => t.services[0]?.backends.length === 2, 'two backends');
      // One goes to each backend: the second is held by the slow one. POST: not retried on the other backend when it is cut.
      const first = await get(`http://127.0.0.1:${port}/`, {}, 'POST');
      const second = get(`http://127.0.0.1:${port}/`, {}, 'POST').then((r) => r.status);
      await until(() => held !== null, 'a request held by the slow backend');
      const series = () => get(`${h2.admin}/metrics`).then((r) => r.text.split('\n').filter((l) => l.includes(`backend="127.0.0.1:${slowPort}"`)));
      h2.marathon.killTask(h2.marathon.tasksOf('/killed').find((t) => t.ports[0] === slowPort)!.id);
      await h2.waitTable((t) => t.services[0]?.backends.length === 1, 'the slow task gone');
      held!.socket!.destroy(); // the killed task drops the request: a 502 the client sees, and a scrape must see
      assert.deepEqual([first.status, await second], [200, 502]);
      const cut = (await series()).find((l) => l.startsWith('turbine_requests_total') && l.includes('code="5xx"'));
      assert.match(cut ?? '', / 1$/, 'the 502 of the killed task counted against it');
      await until(async () => (await series()).length === 0, 'the series gone after the retention', 5000);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(await series(), [], 'and they do not come back');
    } finally {
      slow.close();
      await h2.close();
    }
  });

  it('a task that only enters "excluded" (TASK_STAGING) shows in /routes at once', async () => {
    const port = await freePort();
    const b = await h.httpBackend('running');
    h.marathon.putApp(app('/staged', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
    await h.waitTable((t) => t.services.some((s) => s.appId === '/staged' && s.backends.length === 1), '/staged served');
    const task = h.marathon.addTask('/staged', { host: b.host, ports: [b.port + 1], state: 'TASK_STAGING' });
    h.marathon.statusUpdate(task, 'TASK_STAGING');
    await until(async () => {
      const routes = (await get(`${h.admin}/routes`)).json<RoutesView>();
      return routes.services.find((s) => s.id === '/staged:0')?.excluded.some((e) => e.taskId === task.id);
    }, 'the staging task listed as excluded in /routes');
    h.marathon.removeApp('/staged');
  });

  it('a method the admin port does not serve gets 405 with the methods it does (Allow)', async () => {
    const r = await get(`${h.admin}/routes`, {}, 'DELETE');
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET, HEAD');
    assert.equal((await get(`${h.admin}/_mlb_signal/hup`, {}, 'PUT')).headers.allow, 'GET, HEAD, POST');
  });

  it('an absolute-form request target (RFC 9112 3.2.2: a server must accept it) is served as its path', async () => {
    const port = Number(new URL(h.admin).port);
    const client = rawClient(port);
    client.socket.write(`GET http://127.0.0.1:${port}/_haproxy_health_check?x=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    await client.closed;
    assert.match(client.text(), /^HTTP\/1\.1 200 /);
    assert.match(client.text(), /"status":\s*"ok"/);
  });

  it('/_mlb_signal/usr1 says which signal it acted on', async () => {
    const r = await get(`${h.admin}/_mlb_signal/usr1`, {}, 'POST');
    assert.equal(r.status, 200);
    assert.match(r.text, /^Sent SIGUSR1 signal: full resync/);
  });

  it('ejection cap: when every backend of a service fails, at most half are ejected; /routes and /metrics say so', async () => {
    const port = await freePort();
    const [dead1, dead2] = await Promise.all([freePort(), freePort()]);
    h.marathon.putApp(app('/dead', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }, { instances: 2 }),
      [{ host: '127.0.0.1', ports: [dead1] }, { host: '127.0.0.1', ports: [dead2] }]);
    await h.waitTable((t) => t.services.some((s) => s.appId === '/dead'), '/dead in the table');
    const service = await until(async () => {
      for (let i = 0; i < 5; i += 1) await get(`http://127.0.0.1:${port}/`).catch(() => null);
      const routes = (await get(`${h.admin}/routes`)).json<RoutesView>();
      const s = routes.services.find((x) => x.id === '/dead:0');
      return s?.ejectionCapped ? s : null;
    }, 'the ejection cap reached', 10_000);
    const states = service.backends.map((b) => b.state).sort();
    assert.deepEqual(states, ['down', 'up'], 'one ejected, the other let back in by the cap');
    assert.ok(service.backends.every((b) => b.reasons.includes('ejected')));
    assert.equal(await h.metric('turbine_service_ejection_capped', { service: '/dead:0' }), 1);
    assert.equal(await h.metric('turbine_service_panic', { service: '/dead:0' }), 0);
    h.marathon.removeApp('/dead');
  });
});
