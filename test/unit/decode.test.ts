// Decoding every real Marathon payload in the shared fixtures (Marathon 1.4-1.9 shapes).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeApp, decodeAppList, decodeEvent, encodeApp, instanceIdOfTask, splitEventData, MalformedEvent, type DecodeProblem,
} from '../../src/marathon/decode.js';
import { buildRoutingTable } from '../../src/routing/builder.js';
import { fixtureFiles, readFixture } from '../support/fixtures.js';

const unwrap = (body: Record<string, unknown>): unknown[] => (Array.isArray(body.apps) ? body.apps : body.app ? [body.app] : [body]);

describe('decoding marathon-lb fixtures', () => {
  for (const file of fixtureFiles('marathon-lb')) {
    it(`${file} decodes without problems`, () => {
      const problems: DecodeProblem[] = [];
      const apps = unwrap(readFixture('marathon-lb', file)).map((a) => decodeApp(a, problems));
      assert.deepEqual(problems, []);
      for (const app of apps) {
        assert.ok(app && app.id.startsWith('/'), 'app id is absolute');
        assert.equal(app.labels.HAPROXY_GROUP, 'external');
        if (file !== 'ci-backends_ucr_ippc.json') assert.ok(app.ports.length >= 1, `${file}: no port found`);
      }
    });
  }

  it('marathon15_apps: a Docker bridge app routes to the agent host and host port, vhost on port 0', () => {
    const apps = decodeAppList(readFixture('marathon-lb', 'marathon15_apps.json'), []);
    const table = buildRoutingTable(apps, { groups: ['external'], strictMode: false, healthCheck: true });
    assert.equal(table.services.length, 1);
    const [s] = table.services;
    assert.equal(s!.servicePort, 10101);
    assert.deepEqual(s!.vhosts, ['myvhost.com']);
    assert.equal(s!.mode, 'http');
    assert.deepEqual(s!.backends.map((b) => b.address), ['10.0.2.148:1565']);
  });

  it('zdd blue/green apps that share HAPROXY_0_PORT and deployment group serve one port with both colours', () => {
    const apps = decodeAppList(readFixture('marathon-lb', 'zdd_apps.json'), []);
    const table = buildRoutingTable(apps, { groups: ['external'], strictMode: false, healthCheck: true });
    const port10000 = table.services.filter((s) => s.servicePort === 10000);
    assert.equal(port10000.length, 1);
    assert.equal(port10000[0]!.appId, '/nginx', 'the merged service answers for the deployment group');
    const appIds = new Set(port10000[0]!.backends.map((b) => b.appId));
    assert.deepEqual([...appIds].sort(), ['/nginx-blue', '/nginx-green']);
  });

  it('tasks without a state (Marathon before 1.x lists none) are running tasks', () => {
    const apps = decodeAppList(readFixture('marathon-lb', 'zdd_app_blue.json'), []);
    assert.ok(apps[0]!.tasks.length > 0 && apps[0]!.tasks.every((t) => t.state === null));
    const table = buildRoutingTable(apps, { groups: ['external'], strictMode: false, healthCheck: true });
    assert.equal(table.services[0]!.backends.length, apps[0]!.tasks.length);
  });

  it('IP-per-task and host-networking definitions take their service port from HAPROXY_0_PORT', () => {
    for (const file of ['ci-backends_docker_ippc.json', 'ci-backends_1.9_docker_ippc.json', 'ci-backends_1.9_ucr_host.json']) {
      const app = decodeApp(readFixture('marathon-lb', file), [])!;
      const table = buildRoutingTable([app], { groups: ['external'], strictMode: true, healthCheck: true });
      assert.equal(table.services.length, 1, file);
      assert.equal(table.services[0]!.servicePort, Number(app.labels.HAPROXY_0_PORT));
    }
    const noPorts = decodeApp(readFixture('marathon-lb', 'ci-backends_ucr_ippc.json'), [])!;
    assert.equal(noPorts.ipPerTask, true);
    const table = buildRoutingTable([noPorts], { groups: ['external'], strictMode: true, healthCheck: true });
    assert.equal(table.services.length, 0);
    assert.ok(table.warnings.some((w) => /defines no ports/.test(w.reason)), JSON.stringify(table.warnings));
    assert.equal(decodeApp(readFixture('marathon-lb', 'ci-backends_1.9_ucr_host.json'), [])!.ipPerTask, false);
  });
});

describe('encodeApp, the state file\'s shape', () => {
  it('decodes back to the same app for every fixture (the state file is read by the decoder alone)', () => {
    const apps = [...fixtureFiles('marathon-lb').flatMap((f) => unwrap(readFixture('marathon-lb', f))), readFixture('marathon', 'app-docs-example.json')]
      .map((a) => decodeApp(a, [])!);
    assert.ok(apps.some((a) => a.ipPerTask) && apps.some((a) => a.tasks.some((t) => t.startedAt !== null && t.healthAlive !== null)));
    for (const app of apps) {
      const problems: DecodeProblem[] = [];
      assert.deepEqual(decodeApp(JSON.parse(JSON.stringify(encodeApp(app))), problems), app, app.id);
      assert.deepEqual(problems, []);
    }
  });

  it('keeps what only events told: a task\'s latest state time, no start time before it runs, no health result', () => {
    const app = decodeApp({ id: '/a', portDefinitions: [{ port: 10001 }], tasks: [] }, [])!;
    const tasks = [
      { id: 'a.1', appId: '/a', host: 'agent', ports: [0], ipAddresses: [], state: 'TASK_STAGING' as const, healthAlive: null, stateAt: 1_700_000_000_000, startedAt: null, readiness: 'not-ready' as const },
      { id: 'a.2', appId: '/a', host: '', ports: [31000], ipAddresses: ['10.0.0.2'], state: 'TASK_RUNNING' as const, healthAlive: false, stateAt: 1_700_000_005_000, startedAt: 1_700_000_001_000, readiness: 'ready' as const },
    ];
    assert.deepEqual(decodeApp(JSON.parse(JSON.stringify(encodeApp({ ...app, tasks }))), []), { ...app, tasks });
  });
});

describe('decoding Marathon documentation payloads', () => {
  it('app-docs-example decodes with its ports and health checks', () => {
    const problems: DecodeProblem[] = [];
    const app = decodeApp(readFixture('marathon', 'app-docs-example.json'), problems)!;
    assert.deepEqual(problems, []);
    assert.ok(app.ports.length > 0);
    assert.ok(app.ports.some((p) => p.servicePort !== null));
  });

  it('every event fixture decodes to the event Turbine acts on', () => {
    const expected: Record<string, string> = {
      'event-status_update_event-running.json': 'status_update_event',
      'event-health_status_changed_event.json': 'health_status_changed_event',
      'event-api_post_event.json': 'app_changed',
      'event-deployment_info.json': 'app_changed',
      'event-deployment_success.json': 'app_changed',
      'event-deployment_failed.json': 'app_changed',
      'event-add_health_check_event.json': 'ignored',
      'event-failed_health_check_event.json': 'ignored',
      'event-group_change_success.json': 'ignored',
      'event-unhealthy_task_kill_event.json': 'ignored',
    };
    const files = fixtureFiles('marathon').filter((f) => f.startsWith('event-'));
    assert.deepEqual(files.sort(), Object.keys(expected).sort());
    for (const file of files) assert.equal(decodeEvent(readFixture('marathon', file), null).type, expected[file], file);
  });

  it('a status update carries task, app, state, host and ports', () => {
    const event = decodeEvent(readFixture('marathon', 'event-status_update_event-running.json'), null);
    assert.deepEqual(event, { type: 'status_update_event', taskId: 'my-app_0-1396592784349', appId: '/my-app', state: 'TASK_RUNNING',
      host: 'slave-1234.acme.org', ports: [31372], ipAddresses: [], at: Date.parse('2014-03-01T23:29:30.158Z') });
  });

  it('health_status_changed_event names the instance; tasks map to their instance', () => {
    const event = decodeEvent(readFixture('marathon', 'event-health_status_changed_event.json'), null);
    assert.equal(event.type, 'health_status_changed_event');
    assert.equal((event as { instanceId: string }).instanceId, 'my-app.instance-c7c311a4-b669-11e6-a48f-0ea4f4b1778c');
    assert.equal(instanceIdOfTask('my-app.instance-c7c311a4-b669-11e6-a48f-0ea4f4b1778c._app.1'), 'my-app.instance-c7c311a4-b669-11e6-a48f-0ea4f4b1778c');
    assert.equal(instanceIdOfTask('my-app.0664256e-6771-11e5-94e1-be5b2935a987'), 'my-app.marathon-0664256e-6771-11e5-94e1-be5b2935a987');
    // Older forms Marathon's Task.Id still parses: `_` before the UUID, and a resident task's attempt after it.
    assert.equal(instanceIdOfTask('group_my-app_0664256e-6771-11e5-94e1-be5b2935a987'), 'group_my-app.marathon-0664256e-6771-11e5-94e1-be5b2935a987');
    assert.equal(instanceIdOfTask('my-app.0664256e-6771-11e5-94e1-be5b2935a987.3'), 'my-app.marathon-0664256e-6771-11e5-94e1-be5b2935a987');
  });

  it('deployment_info names the apps its steps act on', () => {
    const event = decodeEvent(readFixture('marathon', 'event-deployment_info.json'), null);
    assert.deepEqual((event as { appIds: string[] }).appIds, ['/my-app']);
  });

  it('a status update without taskStatus is malformed, not a crash', () => {
    assert.throws(() => decodeEvent({ eventType: 'status_update_event', taskId: 'x', appId: '/a' }, null), MalformedEvent);
    assert.throws(() => decodeEvent({ eventType: 'status_update_event', taskId: 'x', appId: '/a', taskStatus: 'TASK_DANCING' }, null), MalformedEvent);
    assert.throws(() => decodeEvent([1, 2], null), MalformedEvent);
  });

  it('one data field holding several JSON documents separated by CRLF is split', () => {
    assert.deepEqual(splitEventData('{"a":1}\r\n{"b":2}\r\n'), ['{"a":1}', '{"b":2}']);
    assert.deepEqual(splitEventData('{"a":1}\n{"b":2}'), ['{"a":1}', '{"b":2}']);
    assert.deepEqual(splitEventData('  '), []);
  });

  it('a malformed app is skipped with a reason; its neighbours decode', () => {
    const problems: DecodeProblem[] = [];
    const apps = decodeAppList({ apps: [{ id: '/ok', tasks: [] }, { noid: true }, 'junk', { id: '/bad-tasks', tasks: 'x' }, { id: '/t', tasks: [{ id: 't1', state: 'TASK_WHAT' }, { host: 'h' }] }] }, problems);
    assert.deepEqual(apps.map((a) => a.id), ['/ok', '/t']);
    assert.equal(apps[1]!.tasks.length, 0);
    assert.equal(problems.length, 5);
    assert.throws(() => decodeAppList({ notApps: [] }, []), /apps/);
  });
});
