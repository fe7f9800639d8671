// Marathon changes reaching traffic: scale-up, kills under a steady client, health flips, stream
// drops, a Marathon restart, malformed input that is skipped and counted.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { app, startHarness, type Harness } from '../support/harness.js';
import { readFixtureText } from '../support/fixtures.js';
import { freePort, get, settled, until, untilServed } from '../support/net.js';

describe('Marathon changes reach traffic', () => {
  let h: Harness;
  let port: number;

  before(async () => {
    h = await startHarness();
    port = await freePort();
    const b = await h.httpBackend('first');
    h.marathon.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
    await h.waitTable((t) => t.services[0]?.backends.length === 1, 'the first backend');
  });
  after(() => h.close());

  it('a task scaled up gets traffic after its TASK_RUNNING event', async () => {
    const b = await h.httpBackend('scaled');
    h.marathon.startTask('/web', { host: b.host, ports: [b.port] });
    await until(async () => (await get(`http://127.0.0.1:${port}/`)).json().backend === 'scaled', 'a request reaching the new task');
    assert.ok(b.hits() > 0);
  });

  it('a task still staging or starting gets no traffic', async () => {
    const b = await h.httpBackend('staging');
    const task = h.marathon.addTask('/web', { host: b.host, ports: [b.port], state: 'TASK_STAGING' });
    h.marathon.statusUpdate(task, 'TASK_STAGING');
    h.marathon.statusUpdate(task, 'TASK_STARTING');
    await h.marathon.dropStreams(); // forces a resync too: the task is listed as STARTING there
    await until(() => h.turbine.sync.getStatus().state === 'connected' && h.marathon.streamCount() > 0, 'reconnected');
    for (let i = 0; i < 10; i += 1) await get(`http://127.0.0.1:${port}/`);
    assert.equal(b.hits(), 0);
    h.marathon.killTask(task.id);
  });

  it('a killed task gets no request after its event while a client keeps sending', async () => {
    const victim = await h.httpBackend('victim');
    const task = h.marathon.startTask('/web', { host: victim.host, ports: [victim.port] });
    const web = (t: NonNullable<ReturnType<Harness['turbine']['table']>>) => t.services.find((s) => s.appId === '/web')!;
    await h.waitTable((t) => web(t).backends.some((b) => b.taskId === task.id), 'the victim in the table');
    let stop = false;
    const failures: number[] = [];
    let sent = 0;
    const client = (async () => {
      while (!stop) {
        const res = await get(`http://127.0.0.1:${port}/`);
        sent += 1;
        if (res.status !== 200) failures.push(res.status);
      }
    })();
    await until(() => victim.hits() > 0, 'the victim serving');
    h.marathon.killTask(task.id);
    await h.waitTable((t) => !web(t).backends.some((b) => b.taskId === task.id), 'the victim gone from the table');
    const hitsAtRemoval = victim.hits();
    const sentAtRemoval = sent;
    await until(() => sent > sentAtRemoval + 50, 'fifty more requests');
    stop = true;
    await client;
    assert.equal(victim.hits(), hitsAtRemoval, 'no request reached the killed task after its removal');
    assert.deepEqual(failures, []);
    await victim.stop();
  });

  it('a failing Marathon health result takes the task out; a passing one brings it back', async () => {
    const p = await freePort();
    const [a, b] = [await h.httpBackend('hc-a'), await h.httpBackend('hc-b')];
    h.marathon.putApp(app('/checked', p, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }, { healthChecks: [{ protocol: 'COMMAND', command: { value: 'true' } }] }),
      [{ host: a.host, ports: [a.port], alive: true }, { host: b.host, ports: [b.port], alive: true }]);
    await h.waitTable((t) => t.services.find((s) => s.appId === '/checked')?.backends.length === 2, 'two healthy');
    const [ta] = h.marathon.tasksOf('/checked');
    h.marathon.setHealth(ta!.id, false);
    await h.waitTable((t) => t.services.find((s) => s.appId === '/checked')?.backends.length === 1, 'one taken out');
    const before = a.hits();
    for (let i = 0; i < 6; i += 1) assert.equal((await get(`http://127.0.0.1:${p}/`)).json().backend, 'hc-b');
    assert.equal(a.hits(), before);
    assert.equal(await h.metric('turbine_backend_down_reason', { service: '/checked:0', reason: 'marathon-health', backend: `${a.host}:${a.port}` }), 1);
    assert.equal(await h.metric('turbine_backend_up', { service: '/checked:0' }), 1);
    h.marathon.setHealth(ta!.id, true);
    await h.waitTable((t) => t.services.find((s) => s.appId === '/checked')?.backends.length === 2, 'back in');
  });

  it('with two Marathon health checks, one failing keeps the task in (any alive, as marathon-lb); both failing take it out', async () => {
    const p = await freePort();
    const [a, b] = [await h.httpBackend('two-a'), await h.httpBackend('two-b')];
    const checks = [{ protocol: 'HTTP', portIndex: 0, path: '/' }, { protocol: 'TCP', portIndex: 0 }];
    h.marathon.putApp(app('/two-checks', p, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }, { healthChecks: checks }),
      [{ host: a.host, ports: [a.port], alive: true }, { host: b.host, ports: [b.port], alive: true }]);
    const served = (t: Parameters<Parameters<Harness['waitTable']>[0]>[0]) => t.services.find((s) => s.appId === '/two-checks')?.backends.length;
    await h.waitTable((t) => served(t) === 2, 'two healthy');
    const [ta] = h.marathon.tasksOf('/two-checks');
    const refetches = () => h.metric('turbine_marathon_resyncs_total', { scope: 'app' });
    // The fetch that followed the app's creation is over: a later one is the health event's.
    const before = await settled(refetches, 'no app fetch in flight', 300);
    h.marathon.setHealth(ta!.id, false, 1);
    // Marathon's event says only "not alive": the app's results are fetched, and they say one check passes.
    await until(async () => await refetches() > before, 'the app fetched again');
    await h.waitTable((t) => served(t) === 2, 'both still served');
    h.marathon.setHealth(ta!.id, false, 0);
    await h.waitTable((t) => served(t) === 1, 'the task with no passing check taken out');
  });

  it('a new app posted to Marathon is served without a restart', async () => {
    const p = await freePort();
    const b = await h.httpBackend('new-app');
    h.marathon.putApp(app('/fresh', p, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }));
    h.marathon.startTask('/fresh', { host: b.host, ports: [b.port] });
    await until(async () => (await get(`http://127.0.0.1:${p}/`)).json().backend === 'new-app', 'the new app served');
    h.marathon.removeApp('/fresh');
    // Closed means refused: a reset, a timeout or a 503 would be a listener still there, failing.
    await until(async () => {
      try {
        await get(`http://127.0.0.1:${p}/`, { connection: 'close' });
        return false;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') return true;
        throw err;
      }
    }, 'the listener closed (connection refused)');
  });

  it('an app whose HAPROXY_0_MODE changes from tcp to http is served as http on the same port', async () => {
    const p = await freePort();
    const b = await h.httpBackend('mode-change');
    h.marathon.putApp(app('/modal', p, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'tcp' }), [{ host: b.host, ports: [b.port] }]);
    await h.waitTable((t) => t.services.find((s) => s.appId === '/modal')?.mode === 'tcp', 'tcp mode');
    await untilServed(`http://127.0.0.1:${p}/`, 'served through the TCP listener');
    h.marathon.putApp(app('/modal', p, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
    await h.waitTable((t) => t.services.find((s) => s.appId === '/modal')?.mode === 'http', 'http mode');
    // Only the HTTP listener adds X-Forwarded-For: it shows which listener answered.
    await until(async () => {
      try {
        return (await get(`http://127.0.0.1:${p}/`, { connection: 'close' })).json<{ headers: Record<string, string> }>().headers['x-forwarded-for'] === '127.0.0.1';
      } catch {
        return false;
      }
    }, 'the HTTP listener on the same port');
    h.marathon.removeApp('/modal');
  });

  it('when the stream drops, Turbine reconnects and resyncs; changes made meanwhile are picked up', async () => {
    const fetchesBefore = h.marathon.requests.apps;
    h.marathon.stall(true);
    h.marathon.dropStreams();
    const b = await h.httpBackend('while-down');
    h.marathon.addTask('/web', { host: b.host, ports: [b.port] }); // no event: only a resync can see it
    h.marathon.stall(false);
    await until(async () => (await get(`http://127.0.0.1:${port}/`)).json().backend === 'while-down', 'the task added while down');
    assert.ok(h.marathon.requests.apps > fetchesBefore);
    assert.ok(await h.metric('turbine_marathon_stream_reconnects_total') >= 1);
    // The resync that saw the task may have been one the stream's earlier reopening put off, not this one's: the stream is back too.
    await until(() => h.turbine.sync.getStatus().state === 'connected' && h.marathon.streamCount() === 1, 'the stream open again');
  });

  it('malformed SSE data and malformed events are skipped and counted; routing goes on', async () => {
    const before = await h.metric('turbine_marathon_malformed_total', { what: 'event' });
    h.marathon.writeRaw('event: status_update_event\ndata: {"taskId": "x", "truncated\n\n');
    h.marathon.writeRaw('event: status_update_event\ndata: {"eventType":"status_update_event","appId":"/web","taskId":"y"}\n\n');
    h.marathon.writeRaw('garbage line without colon\n\n');
    const b = await h.httpBackend('after-garbage');
    h.marathon.startTask('/web', { host: b.host, ports: [b.port] });
    await until(async () => (await get(`http://127.0.0.1:${port}/`)).json().backend === 'after-garbage', 'routing after malformed input');
    assert.equal(await h.metric('turbine_marathon_malformed_total', { what: 'event' }) - before, 2);
  });

  it('several JSON documents in one data field are all applied', async () => {
    const [a, b] = [await h.httpBackend('multi-a'), await h.httpBackend('multi-b')];
    const doc = (id: string, bk: { host: string; port: number }) => JSON.stringify({ eventType: 'status_update_event', appId: '/web', taskId: id, taskStatus: 'TASK_RUNNING', host: bk.host, ports: [bk.port], timestamp: new Date().toISOString() });
    h.marathon.writeRaw(`event: status_update_event\ndata: ${doc('web.multi-a', a)}\ndata: ${doc('web.multi-b', b)}\n\n`);
    await h.waitTable((t) => ['web.multi-a', 'web.multi-b'].every((id) => t.services.find((s) => s.appId === '/web')!.backends.some((x) => x.taskId === id)), 'both tasks');
  });

  it('a malformed app in /v2/apps is skipped and counted; the other apps are served', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const p = await freePort();
    const good = await h.httpBackend('good');
    m.putApp(app('/good', p, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: good.host, ports: [good.port] }]);
    m.rawApps.push({ id: '/bad', labels: { HAPROXY_GROUP: 'external' }, tasks: 'not-a-list' }, { labels: {} }, 42);
    const h2 = await startHarness({}, m);
    try {
      await until(async () => (await get(`http://127.0.0.1:${p}/`)).json().backend === 'good', 'the good app served');
      // Each full fetch (one at start, one when the stream opens) skips and counts the three.
      await until(async () => await h2.metric('turbine_marathon_malformed_total', { what: 'app' }) === 3 * m.requests.apps, 'three counted per fetch');
      assert.ok(m.requests.apps >= 1);
    } finally {
      await h2.close();
    }
  });
});

describe('Marathon outages', () => {
  it('Marathon restarting keeps the last table serving, then resyncs', async () => {
    const m = new FakeMarathon();
    const mport = await m.listen();
    const h = await startHarness({}, m);
    try {
      const p = await freePort();
      const b = await h.httpBackend('survivor');
      m.putApp(app('/web', p, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      await h.waitTable((t) => t.services.length === 1 && t.services[0]!.backends.length === 1, 'served');
      await m.close();
      await until(() => h.turbine.sync.getStatus().state !== 'connected', 'disconnected');
      for (let i = 0; i < 5; i += 1) assert.equal((await get(`http://127.0.0.1:${p}/`)).json().backend, 'survivor');
      assert.equal((await get(`${h.admin}/_haproxy_health_check`)).status, 200);
      const m2 = new FakeMarathon();
      await m2.listen(mport);
      const b2 = await h.httpBackend('after-restart');
      m2.putApp(app('/web', p, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b2.host, ports: [b2.port] }]);
      await until(async () => (await get(`http://127.0.0.1:${p}/`)).json().backend === 'after-restart', 'the new Marathon state', 15_000);
      await m2.close();
    } finally {
      await h.close();
    }
  });

  it('fails over to the next Marathon URL, and follows a non-leader redirect for events', async () => {
    const leader = new FakeMarathon();
    await leader.listen();
    const follower = new FakeMarathon();
    await follower.listen();
    follower.redirectEventsTo(leader.url);
    const dead = `http://127.0.0.1:${await freePort()}`;
    const h = await startHarness({ marathon: [dead, follower.url] }, leader);
    try {
      const p = await freePort();
      const b = await h.httpBackend('via-failover');
      follower.putApp(app('/web', p, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      await until(async () => (await get(`http://127.0.0.1:${p}/`)).json().backend === 'via-failover', 'served via the second URL', 10_000);
      await until(() => leader.streamCount() === 1, 'the event stream opened on the leader', 10_000);
    } finally {
      await h.close();
      await follower.close();
    }
  });

  it('Marathon answering 500 then recovering: the table appears once it answers', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const p = await freePort();
    m.failRest(500, 2);
    const h = await startHarness({}, m);
    try {
      const b = await h.httpBackend('late');
      m.putApp(app('/web', p, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      await until(async () => (await get(`http://127.0.0.1:${p}/`)).json().backend === 'late', 'served after recovery', 10_000);
      assert.ok(await h.metric('turbine_marathon_resyncs_total', { scope: 'full', result: 'error' }) >= 1);
    } finally {
      await h.close();
    }
  });
});

describe("Marathon's SSE framing", () => {
  let server: Server;
  let url: string;
  before(async () => {
    // The fixture file served verbatim, as Marathon sent it.
    server = createServer((req, res) => {
      if (req.url?.startsWith('/v2/events')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(readFixtureText('marathon', 'sse-events-example.txt'));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"apps":[]}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => { server.closeAllConnections(); server.close(); });

  it('the documented event stream is read event by event', async () => {
    const h = await startHarness({ marathon: [url] }, new FakeMarathon());
    try {
      await until(async () => await h.metric('turbine_marathon_events_total', { type: 'status_update_event' }) === 2, 'two status updates counted');
      assert.equal(await h.metric('turbine_marathon_malformed_total'), 0);
    } finally {
      await h.close();
    }
  });
});
