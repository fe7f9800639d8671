// The ejection cap and panic mode as the balancer sees them: the decision from every reason, applied
// through BackendHealth, changes which backends pick() returns.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendHealth } from '../../src/health/backend-health.js';
import { decideEjections } from '../../src/health/ejection-limits.js';
import { Balancer } from '../../src/proxy/balancer.js';
import type { Backend, RoutingTable } from '../../src/routing/table.js';

const backends: Backend[] = ['a', 'b', 'c', 'd'].map((n, i) => ({ address: `${n}:1`, host: n, port: 1, checkPort: 1, taskId: `t${i}`, appId: '/x', startedAt: null }));
// Only what the decision reads: service ids and their backends.
const table = { generation: 1, appCount: 1, warnings: [], services: [{ id: '/x:0', backends }] } as unknown as RoutingTable;
const limits = { maxEjectionPercent: 50, panicThresholdPercent: 50 };

function picked(health: BackendHealth): string[] {
  const balancer = new Balancer('roundrobin');
  return [...new Set(Array.from({ length: 8 }, () => balancer.pick(backends, health.isUp, '')?.address))].sort() as string[];
}

function decideAndApply(health: BackendHealth) {
  const decision = decideEjections(table, (a) => health.reasons(a), limits);
  health.setRoutable([...decision.routable]);
  return decision.services[0];
}

describe('ejection cap and panic mode', () => {
  it('three of four backends failing: only half are ejected, the rest keep getting traffic', () => {
    const health = new BackendHealth({ ejectAfterFailures: 1, ejectMs: 60_000 });
    for (const b of ['a:1', 'b:1', 'c:1']) health.reportFailure(b);
    assert.deepEqual(picked(health), ['d:1'], 'each worker alone ejects them all');
    const state = decideAndApply(health);
    assert.deepEqual(state, { service: '/x:0', backends: 4, ejected: 3, ejectionCap: 2, capped: true, panic: false });
    assert.deepEqual(picked(health), ['c:1', 'd:1']);
  });

  it('three of four failing their active check: panic, every backend gets traffic; over when they recover', () => {
    const health = new BackendHealth({ ejectAfterFailures: 3, ejectMs: 60_000 });
    for (const b of ['a:1', 'b:1', 'c:1']) health.setActive(b, false);
    assert.equal(decideAndApply(health)!.panic, true);
    assert.deepEqual(picked(health), ['a:1', 'b:1', 'c:1', 'd:1']);
    health.setActive('a:1', true);
    assert.equal(decideAndApply(health)!.panic, false, 'two of four up is not below 50%');
    assert.deepEqual(picked(health), ['a:1', 'd:1']);
  });

  it('--panic-threshold 0 never panics; no reason at all decides nothing', () => {
    const health = new BackendHealth({ ejectAfterFailures: 3, ejectMs: 60_000 });
    assert.deepEqual(decideEjections(table, (a) => health.reasons(a), limits).services, []);
    for (const b of ['a:1', 'b:1', 'c:1', 'd:1']) health.setActive(b, false);
    const decision = decideEjections(table, (a) => health.reasons(a), { maxEjectionPercent: 50, panicThresholdPercent: 0 });
    assert.equal(decision.services[0]!.panic, false);
    assert.equal(decision.routable.size, 0);
  });
});
