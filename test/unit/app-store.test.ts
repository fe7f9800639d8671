// The AppStore's event rules: ordering, terminal states, health carried over, instance ids.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppStore } from '../../src/discovery/app-store.js';
import { decodeApp, decodeEvent, skippedApps, type MarathonEvent } from '../../src/marathon/decode.js';

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const status = (taskId: string, taskStatus: string, second: number): MarathonEvent =>
  decodeEvent({ eventType: 'status_update_event', appId: '/web', taskId, taskStatus, host: '10.0.0.1', ports: [31000], timestamp: at(second) }, null);
const apply = (store: AppStore, e: MarathonEvent) => store.applyTaskStatus(e as Extract<MarathonEvent, { type: 'status_update_event' }>);

function storeWithApp(healthChecks: unknown[] = []): AppStore {
  const store = new AppStore();
  store.replaceAll([decodeApp({ id: '/web', labels: { HAPROXY_GROUP: 'external' }, portDefinitions: [{ port: 10000 }], healthChecks, tasks: [] }, [])!]);
  return store;
}

describe('AppStore', () => {
  it('a TASK_RUNNING adds the task; TASK_KILLED removes it', () => {
    const store = storeWithApp();
    assert.equal(apply(store, status('web.t1', 'TASK_RUNNING', 1)), 'changed');
    assert.equal(store.get('/web')!.tasks.length, 1);
    assert.equal(apply(store, status('web.t1', 'TASK_KILLED', 2)), 'changed');
    assert.equal(store.get('/web')!.tasks.length, 0);
  });

  it('a TASK_RUNNING older than the TASK_KILLED already applied does not resurrect the task', () => {
    const store = storeWithApp();
    apply(store, status('web.t1', 'TASK_RUNNING', 1));
    apply(store, status('web.t1', 'TASK_KILLED', 5));
    assert.equal(apply(store, status('web.t1', 'TASK_RUNNING', 3)), 'stale');
    assert.equal(store.get('/web')!.tasks.length, 0);
  });

  it('a terminal task stays dead even when a resync still lists it', () => {
    const store = storeWithApp();
    apply(store, status('web.t1', 'TASK_RUNNING', 1));
    apply(store, status('web.t1', 'TASK_FAILED', 2));
    store.replaceAll([decodeApp({ id: '/web', tasks: [{ id: 'web.t1', host: 'h', ports: [1], state: 'TASK_RUNNING' }] }, [])!]);
    assert.equal(store.get('/web')!.tasks.length, 0);
  });

  it('an older state after a newer one is ignored', () => {
    const store = storeWithApp();
    apply(store, status('web.t1', 'TASK_RUNNING', 5));
    assert.equal(apply(store, status('web.t1', 'TASK_STARTING', 4)), 'stale');
    assert.equal(store.get('/web')!.tasks[0]!.state, 'TASK_RUNNING');
  });

  it('a terminal state removes the task even when its timestamp is older than the state listed (clocks that disagree)', () => {
    const store = storeWithApp();
    apply(store, status('web.t1', 'TASK_RUNNING', 50));
    assert.equal(apply(store, status('web.t1', 'TASK_KILLED', 10)), 'changed');
    assert.equal(store.get('/web')!.tasks.length, 0);
  });

  it('a running task\'s event with ports that are not ports is refused; a terminal one is applied without them', () => {
    const event = (taskStatus: string) => () => decodeEvent({ eventType: 'status_update_event', appId: '/web', taskId: 'web.t1', taskStatus, host: 'h', ports: ['31000'] }, null);
    assert.throws(event('TASK_RUNNING'), /invalid ports/);
    const killed = event('TASK_KILLED')();
    assert.deepEqual((killed as Extract<MarathonEvent, { type: 'status_update_event' }>).ports, []);
  });

  it('an app a resync could not read keeps its last good version; one Marathon no longer lists goes', () => {
    const store = new AppStore();
    const app = (id: string) => decodeApp({ id, tasks: [{ id: `${id.slice(1)}.1`, host: 'h', ports: [1], state: 'TASK_RUNNING' }] }, [])!;
    store.replaceAll([app('/a'), app('/b')]);
    const problems: Parameters<typeof decodeApp>[1] = [];
    const listed = [decodeApp({ id: '/a', tasks: 'garbled' }, problems), decodeApp({ id: '/c' }, problems, true)].flatMap((x) => x ?? []);
    assert.deepEqual(listed, []);
    store.replaceAll(listed, skippedApps(problems));
    assert.deepEqual(store.snapshot().map((x) => x.id), ['/a']);
    assert.equal(store.get('/a')!.tasks.length, 1);
  });

  it('a duplicate event changes nothing and keeps the app object (routing is not rebuilt)', () => {
    const store = storeWithApp();
    apply(store, status('web.t1', 'TASK_RUNNING', 1));
    const before = store.get('/web');
    assert.equal(apply(store, status('web.t1', 'TASK_RUNNING', 1)), 'unchanged');
    assert.equal(store.get('/web'), before);
  });

  it('an event for an unknown app is reported, not applied', () => {
    const store = storeWithApp();
    const e = decodeEvent({ eventType: 'status_update_event', appId: '/nope', taskId: 'nope.1', taskStatus: 'TASK_RUNNING', host: 'h', ports: [1] }, null);
    assert.equal(apply(store, e), 'unknown-app');
  });

  it('health by instance id reaches the task; the last result stands when a resync omits results', () => {
    const store = storeWithApp([{ protocol: 'HTTP', path: '/' }]);
    const taskId = 'web.instance-0a1b._app.1';
    apply(store, decodeEvent({ eventType: 'status_update_event', appId: '/web', taskId, taskStatus: 'TASK_RUNNING', host: 'h', ports: [1] }, null));
    const health = decodeEvent({ eventType: 'health_status_changed_event', appId: '/web', instanceId: 'web.instance-0a1b', alive: true }, null);
    assert.equal(store.applyHealth(health as Extract<MarathonEvent, { type: 'health_status_changed_event' }>), 'changed');
    assert.equal(store.get('/web')!.tasks[0]!.healthAlive, true);
    store.replaceAll([decodeApp({ id: '/web', healthChecks: [{ protocol: 'HTTP' }], tasks: [{ id: taskId, host: 'h', ports: [1], state: 'TASK_RUNNING' }] }, [])!]);
    assert.equal(store.get('/web')!.tasks[0]!.healthAlive, true);
  });

  it('a health event for a task the app does not hold says so (the app is then refetched), and reaches a legacy task by its instance', () => {
    const store = storeWithApp([{ protocol: 'HTTP', path: '/' }]);
    const legacy = 'web_0a1b-22';
    apply(store, decodeEvent({ eventType: 'status_update_event', appId: '/web', taskId: legacy, taskStatus: 'TASK_RUNNING', host: 'h', ports: [1] }, null));
    const health = (instanceId: string) => decodeEvent({ eventType: 'health_status_changed_event', appId: '/web', instanceId, alive: false }, null) as Extract<MarathonEvent, { type: 'health_status_changed_event' }>;
    assert.equal(store.applyHealth(health('web.marathon-0a1b-22')), 'changed');
    assert.equal(store.get('/web')!.tasks.find((t) => t.id === legacy)!.healthAlive, false);
    assert.equal(store.applyHealth(health('web.instance-ffff')), 'unknown-task');
  });

  it('a resync that brings nothing new keeps every app object', () => {
    const store = new AppStore();
    const raw = { id: '/a', labels: { HAPROXY_GROUP: 'external' }, tasks: [{ id: 'a.1', host: 'h', ports: [1], state: 'TASK_RUNNING' }] };
    store.replaceAll([decodeApp(raw, [])!]);
    const before = store.get('/a');
    store.replaceAll([decodeApp(raw, [])!]);
    assert.equal(store.get('/a'), before);
  });
});
