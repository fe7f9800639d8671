// The incremental builder against a build from scratch: after any sequence of app changes, removals,
// blue/green colours, service-port clashes and agent-host answers, the table it keeps equals the
// table built from nothing, and its change set is exactly what moved.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { HostAddresses } from '../../src/discovery/host-resolver.js';
import { AppStore } from '../../src/discovery/app-store.js';
import { decodeApp, type MarathonApp } from '../../src/marathon/decode.js';
import { TableBuilder, buildRoutingTable } from '../../src/routing/builder.js';
import type { RoutingTable, Service } from '../../src/routing/table.js';

const OPTIONS = { groups: ['x'], strictMode: false, healthCheck: false };
const IDS = ['/a', '/a/b', '/b', '/blue', '/green', '/c'];
const HOSTS = ['10.0.0.1', 'agent-1', 'agent-2'];

const appSpec = fc.record({
  id: fc.constantFrom(...IDS),
  port: fc.constantFrom(10001, 10002, 10003),
  secondPort: fc.option(fc.constantFrom(10001, 10004), { nil: undefined }),
  group: fc.constantFrom('x', 'y'),
  deploymentGroup: fc.option(fc.constantFrom('/dg'), { nil: undefined }),
  vhost: fc.option(fc.constantFrom('a.test', 'b.test'), { nil: undefined }),
  template: fc.boolean(),
  tasks: fc.array(fc.record({ host: fc.constantFrom(...HOSTS), port: fc.integer({ min: 31000, max: 31003 }), running: fc.boolean() }), { maxLength: 3 }),
  version: fc.nat(3),
});

type AppSpec = typeof appSpec extends fc.Arbitrary<infer T> ? T : never;
type Op =
  | { kind: 'put'; spec: AppSpec }
  | { kind: 'remove'; id: string }
  | { kind: 'resolve'; host: string; answer: string | null };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: appSpec.map((spec) => ({ kind: 'put' as const, spec })) },
  { weight: 2, arbitrary: fc.constantFrom(...IDS).map((id) => ({ kind: 'remove' as const, id })) },
  { weight: 2, arbitrary: fc.record({ host: fc.constantFrom('agent-1', 'agent-2'), answer: fc.constantFrom('10.1.0.1', '10.1.0.2', null) }).map((r) => ({ kind: 'resolve' as const, ...r })) },
);

function appOf(spec: AppSpec): MarathonApp {
  const labels: Record<string, string> = { HAPROXY_GROUP: spec.group };
  if (spec.deploymentGroup) Object.assign(labels, { HAPROXY_DEPLOYMENT_GROUP: spec.deploymentGroup, HAPROXY_DEPLOYMENT_STARTED_AT: spec.id === '/blue' ? '2026-01-01T00:00:00Z' : '2026-01-02T00:00:00Z' });
  if (spec.vhost) labels.HAPROXY_0_VHOST = spec.vhost;
  if (spec.template) labels.HAPROXY_0_BACKEND_HEAD = 'x';
  const ports = spec.secondPort === undefined ? [spec.port] : [spec.port, spec.secondPort];
  return decodeApp({
    id: spec.id, version: String(spec.version), labels, instances: spec.tasks.length, portDefinitions: ports.map((port) => ({ port })),
    tasks: spec.tasks.map((t, i) => ({ id: `${spec.id.slice(1).replaceAll('/', '_')}.t${i}`, host: t.host, ports: [t.port, t.port + 100], state: t.running ? 'TASK_RUNNING' : 'TASK_STAGING' })),
  }, [])!;
}

const warningSet = (t: RoutingTable) => t.warnings.map((w) => JSON.stringify(w)).sort();

describe('incremental table builder', () => {
  it('after any sequence of changes, equals the table built from scratch, and its change set is what moved', () => {
    fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => {
      const store = new AppStore();
      const builder = new TableBuilder(OPTIONS);
      let hosts: HostAddresses = new Map([['10.0.0.1', '10.0.0.1']]);
      let previous: RoutingTable | null = null;
      let generation = 0;
      for (const o of ops) {
        if (o.kind === 'put') store.upsertApp(appOf(o.spec));
        else if (o.kind === 'remove') store.removeApp(o.id);
        else hosts = new Map(hosts).set(o.host, o.answer);
        const change = builder.update(store, store.takeChanges(), generation + 1, hosts);
        const fresh = buildRoutingTable(store.snapshot(), OPTIONS, change.table.generation, hosts);
        assert.deepEqual(change.table.services, fresh.services);
        assert.deepEqual(warningSet(change.table), warningSet(fresh));
        assert.equal(change.table.appCount, store.size);

        // The change set takes the previous table's services to the new ones; the rest keep their objects.
        const byId: Map<string, Service> = new Map((previous?.services ?? []).map((s): [string, Service] => [s.id, s]));
        const before = new Map(byId);
        for (const [was, now] of change.services) {
          const id = (now ?? was)!.id;
          assert.equal(byId.get(id), was, `the change's previous ${id} is the one served`);
          if (now) byId.set(id, now);
          else byId.delete(id);
        }
        assert.deepEqual([...byId.values()].sort((x, y) => (x.id < y.id ? -1 : 1)), [...change.table.services].sort((x, y) => (x.id < y.id ? -1 : 1)));
        for (const s of change.table.services) if (!change.services.some(([, now]) => now === s)) assert.equal(before.get(s.id), s, `${s.id} unchanged keeps its object`);
        assert.equal(change.idsChanged, change.services.some(([was, now]) => !was || !now));
        if (change.table !== previous) generation = change.table.generation;
        previous = change.table;
      }
    }), { numRuns: 1500 });
  });

  it('a task event rebuilds only its own app: the other services keep their objects', () => {
    const store = new AppStore();
    const builder = new TableBuilder(OPTIONS);
    const apps = Array.from({ length: 50 }, (_, i) => decodeApp({ id: `/app-${i}`, labels: { HAPROXY_GROUP: 'x' }, portDefinitions: [{ port: 10000 + i }],
      tasks: [{ id: `app-${i}.t0`, host: '10.0.0.1', ports: [31000], state: 'TASK_RUNNING' }] }, [])!);
    store.replaceAll(apps);
    const first = builder.update(store, store.takeChanges(), 1);
    assert.equal(first.services.length, 50);
    store.applyTaskStatus({ type: 'status_update_event', appId: '/app-7', taskId: 'app-7.t1', state: 'TASK_RUNNING', host: '10.0.0.2', ports: [31000], ipAddresses: [], at: Date.now() });
    const second = builder.update(store, store.takeChanges(), 2);
    assert.deepEqual(second.services.map(([was, now]) => [was?.id, now?.backends.length]), [['/app-7:0', 2]]);
    assert.equal(second.idsChanged, false);
    assert.equal(second.table.services.filter((s, i) => s !== first.table.services[i]).length, 1);
    const third = builder.update(store, store.takeChanges(), 3);
    assert.equal(third.table, second.table, 'nothing changed: the same table');
    assert.equal(third.services.length, 0);
  });
});
