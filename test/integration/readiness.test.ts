// Marathon readiness checks through the fake Marathon: a task started by a deployment gets no
// traffic until Marathon reports it ready. No event says so: Turbine fetches the app again while
// one of its tasks waits, and /routes says why the task is out.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningBackend } from '../../src/demo/backends.js';
import type { FakeTask } from '../../src/demo/fake-marathon.js';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, get, until, untilServed } from '../support/net.js';

interface RoutesJson { services: { appId: string; backends: { taskId: string }[]; excluded: { taskId: string; reason: string; detail: string }[] }[] }

describe('Marathon readiness checks', () => {
  let h: Harness;
  let port = 0;
  let oldTask: FakeTask;
  let newBackend: RunningBackend;
  let newTask: FakeTask;

  const readinessChecks = [{ name: 'readinessCheck', protocol: 'HTTP', path: '/ready', portName: 'p0', intervalSeconds: 30, timeoutSeconds: 10, httpStatusCodesForReady: [200] }];
  const exclusionOf = async (taskId: string) => {
    const routes = (await get(`${h.admin}/routes`)).json<RoutesJson>();
    return routes.services.find((s) => s.appId === '/ready')?.excluded.find((e) => e.taskId === taskId) ?? null;
  };
  const answeredBy = async (n: number) => {
    const seen = new Set<string>();
    for (let i = 0; i < n; i += 1) seen.add((await get(`http://127.0.0.1:${port}/`, { connection: 'close' })).json().backend as string);
    return seen;
  };

  before(async () => {
    h = await startHarness({ activeHealthChecks: false });
    const old = await h.httpBackend('old');
    newBackend = await h.httpBackend('new');
    port = await freePort();
    h.marathon.putApp(app('/ready', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }, { readinessChecks }), [{ host: old.host, ports: [old.port] }]);
    oldTask = h.marathon.tasksOf('/ready')[0]!;
    await untilServed(`http://127.0.0.1:${port}/`, 'the app served', 5000, { connection: 'close' });
  });
  after(() => h.close());

  it('a task of the deployment waits for its result, stays out while the check fails, and serves once it passes', async () => {
    h.marathon.startDeployment('/ready');
    newTask = h.marathon.startTask('/ready', { host: newBackend.host, ports: [newBackend.port] });
    const waiting = await until(() => exclusionOf(newTask.id), 'the new task excluded');
    assert.equal(waiting.reason, 'not-ready');
    assert.equal(waiting.detail, 'no readiness result yet');
    assert.deepEqual([...await answeredBy(6)], ['old'], 'the old task takes every request');
    assert.equal(await h.metric('turbine_backend_down_reason', { reason: 'not-ready', backend: `${newBackend.host}:${newBackend.port}` }), 1, 'down, with its reason, in /metrics');

    h.marathon.setReadiness(newTask.id, false);
    await until(async () => (await exclusionOf(newTask.id))?.detail === 'readiness check not passed yet', 'the failing result shown', 10_000);
    assert.deepEqual([...await answeredBy(6)], ['old']);

    h.marathon.setReadiness(newTask.id, true);
    await until(async () => (await exclusionOf(newTask.id)) === null, 'the ready task served', 10_000);
    assert.deepEqual([...await answeredBy(6)].sort(), ['new', 'old']);
  });

  it('after the deployment (Marathon lists no results any more) the new task keeps serving alone once the old one is killed', async () => {
    h.marathon.killTask(oldTask.id);
    h.marathon.finishDeployment('/ready');
    await h.waitTable((t) => t.services.some((s) => s.appId === '/ready' && s.backends.length === 1 && s.backends[0]!.taskId === newTask.id), 'only the new task');
    assert.deepEqual([...await answeredBy(4)], ['new']);
    assert.equal(await exclusionOf(newTask.id), null);
  });
});

describe('an app waiting on its readiness check while Marathon cannot be read', () => {
  it('answers without tasks: the app is polled, /v2/apps is not fetched at each poll; answers failing: full fetches follow the backoff', async () => {
    const h = await startHarness({ activeHealthChecks: false });
    try {
      const [old, fresh] = [await h.httpBackend('old'), await h.httpBackend('new')];
      const checks = [{ name: 'readinessCheck', protocol: 'HTTP', path: '/ready', portName: 'p0', intervalSeconds: 30, timeoutSeconds: 10, httpStatusCodesForReady: [200] }];
      h.marathon.putApp(app('/slow', await freePort(), { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }, { readinessChecks: checks }), [{ host: old.host, ports: [old.port] }]);
      h.marathon.startDeployment('/slow');
      h.marathon.startTask('/slow', { host: fresh.host, ports: [fresh.port] });
      await until(() => h.turbine.table()?.services.some((s) => s.excluded.some((e) => e.reason === 'not-ready')), 'the new task waiting');
      await h.streamSettled();
      const polls = h.marathon.requests.app;

      h.marathon.omitTasks(true);
      const listings = h.marathon.requests.apps;
      await new Promise((r) => setTimeout(r, 5000));
      assert.ok(h.marathon.requests.app >= polls + 2, 'the waiting app is still polled');
      assert.equal(h.marathon.requests.apps, listings, 'no full fetch: it could not read the app either');

      h.marathon.omitTasks(false);
      h.marathon.failRest(500, 1000);
      const failed = () => h.metric('turbine_marathon_resyncs_total', { scope: 'full', result: 'error' });
      const before = await failed();
      await new Promise((r) => setTimeout(r, 7000));
      // The first poll's failure asks for one; its retries come 2 s and then 4 s later. Each poll asked for another before.
      assert.ok(await failed() - before <= 3, `${await failed() - before} failed full fetches in 7 s`);
    } finally {
      h.marathon.failRest(500, 0);
      await h.close();
    }
  });
});
