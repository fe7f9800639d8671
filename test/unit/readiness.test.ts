// Marathon readiness checks (marathon-lb issues #158, #467): during a deployment a task serves only
// once Marathon calls it ready. Payloads in Marathon's wire format: the readiness check of its app
// example, the result entries of its deployments example.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppStore } from '../../src/discovery/app-store.js';
import { decodeApp, decodeEvent, type DecodeProblem, type MarathonEvent } from '../../src/marathon/decode.js';
import { buildRoutingTable } from '../../src/routing/builder.js';
import type { RoutingTable } from '../../src/routing/table.js';
import { readFixture } from '../support/fixtures.js';

const APP_VERSION = '2026-03-01T10:00:00.000Z';
const OLD_VERSION = '2026-02-01T10:00:00.000Z';
const readinessChecks = readFixture<{ readinessChecks: unknown[] }>('marathon', 'app-docs-example.json').readinessChecks;
/** `{ taskId, lastResponse, name, ready }` as Marathon's deployments example lists it. */
const resultEntry = readFixture<{ currentActions: { readinessCheckResults: Record<string, Record<string, unknown>[]> }[] }[]>('marathon', 'deployments-readiness-example.json')[0]!
  .currentActions[0]!.readinessCheckResults['/foo']![0]!;
const result = (taskId: string, ready: boolean) => ({ ...resultEntry, taskId, ready });

const task = (id: string, port: number, version = APP_VERSION) => ({ id, host: '10.0.0.1', ports: [port], state: 'TASK_RUNNING', version });

function appJson(extra: Record<string, unknown>) {
  return { id: '/web', labels: { HAPROXY_GROUP: 'external' }, portDefinitions: [{ port: 10000 }], version: APP_VERSION, ...extra };
}

function routed(apps: unknown[]): { table: RoutingTable; problems: DecodeProblem[] } {
  const problems: DecodeProblem[] = [];
  const decoded = apps.map((a) => decodeApp(a, problems)!);
  return { table: buildRoutingTable(decoded, { groups: ['external'], strictMode: false, healthCheck: true }), problems };
}

const backends = (t: RoutingTable) => t.services[0]!.backends.map((b) => b.address);
const excluded = (t: RoutingTable) => t.services[0]!.excluded.map((e) => `${e.taskId} ${e.reason}: ${e.detail}`);

describe('Marathon readiness checks', () => {
  it('during a deployment, a task Marathon reports not ready gets no traffic; a ready one does', () => {
    const { table } = routed([appJson({
      readinessChecks, deployments: [{ id: 'd1' }],
      tasks: [task('web.a', 31001), task('web.b', 31002)],
      readinessCheckResults: [result('web.a', true), result('web.b', false)],
    })]);
    assert.deepEqual(backends(table), ['10.0.0.1:31001']);
    assert.deepEqual(excluded(table), ['web.b not-ready: readiness check not passed yet']);
  });

  it('a task of the version being deployed waits for its first result; tasks from before the deployment keep serving', () => {
    const { table } = routed([appJson({
      readinessChecks, deployments: [{ id: 'd1' }],
      tasks: [task('web.old', 31001, OLD_VERSION), task('web.new', 31002)],
      readinessCheckResults: [],
    })]);
    assert.deepEqual(backends(table), ['10.0.0.1:31001']);
    assert.deepEqual(excluded(table), ['web.new not-ready: no readiness result yet']);
  });

  it('with no deployment under way, or no readiness checks, every running task serves as before', () => {
    const done = routed([appJson({ readinessChecks, deployments: [], tasks: [task('web.a', 31001)] })]).table;
    assert.deepEqual(backends(done), ['10.0.0.1:31001']);
    const unchecked = routed([appJson({ deployments: [{ id: 'd1' }], tasks: [task('web.a', 31001)] })]).table;
    assert.deepEqual(backends(unchecked), ['10.0.0.1:31001']);
  });

  it('a result entry without taskId or ready is reported and ignored', () => {
    const { table, problems } = routed([appJson({
      readinessChecks, deployments: [{ id: 'd1' }], tasks: [task('web.a', 31001, OLD_VERSION)],
      readinessCheckResults: [{ name: 'readinessCheck', ready: 'yes' }],
    })]);
    assert.deepEqual(backends(table), ['10.0.0.1:31001']);
    assert.deepEqual(problems.map((p) => `${p.what} ${p.id}`), ['readiness /web']);
  });

  it('a task announced by an event waits until a fetch of its app says whether Marathon checks it', () => {
    const store = new AppStore();
    store.replaceAll([decodeApp(appJson({ readinessChecks, deployments: [], tasks: [] }), [])!]);
    const running = decodeEvent({ eventType: 'status_update_event', appId: '/web', taskId: 'web.a', taskStatus: 'TASK_RUNNING',
      host: '10.0.0.1', ports: [31001], timestamp: '2026-03-01T10:00:01.000Z' }, null) as Extract<MarathonEvent, { type: 'status_update_event' }>;
    assert.equal(store.applyTaskStatus(running), 'changed');
    const waiting = buildRoutingTable(store.snapshot(), { groups: ['external'], strictMode: false, healthCheck: true });
    assert.deepEqual(excluded(waiting), ['web.a not-ready: no readiness result yet']);

    // The refetch finds no deployment (a task replaced after a crash, say): only readiness changed, and that is a change.
    assert.equal(store.upsertApp(decodeApp(appJson({ readinessChecks, deployments: [], tasks: [task('web.a', 31001)] }), [])!), true);
    const served = buildRoutingTable(store.snapshot(), { groups: ['external'], strictMode: false, healthCheck: true });
    assert.deepEqual(backends(served), ['10.0.0.1:31001']);
  });
});
