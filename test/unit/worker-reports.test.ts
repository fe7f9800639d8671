// A worker reports only the services whose counters moved; the primary's copy, rebuilt from those
// deltas, equals the worker's whole snapshot after every report.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyStats } from '../../src/observability/stats.js';
import { TrafficReporter, withTrafficDelta } from '../../src/cluster/worker-messages.js';
import type { StatsSnapshot } from '../../src/observability/stats.js';

describe('worker traffic reports', () => {
  it('carry what moved, and the primary rebuilds the whole snapshot from them', () => {
    const stats = new ProxyStats();
    const reporter = new TrafficReporter();
    let primary: StatsSnapshot | undefined;
    const report = () => {
      const whole = JSON.parse(JSON.stringify(stats.snapshot({}))) as StatsSnapshot;
      const { traffic, forgotten } = reporter.delta(whole);
      primary = withTrafficDelta(primary, JSON.parse(JSON.stringify(traffic)) as StatsSnapshot, forgotten);
      assert.deepEqual(primary, whole);
      return Object.keys(traffic.services);
    };
    for (let i = 0; i < 100; i += 1) {
      stats.addBackend(`/s${i}:0`, `10.0.0.${i}:31000`);
      stats.request(stats.service(`/s${i}:0`), `10.0.0.${i}:31000`, 200, 0.001);
    }
    assert.equal(report().length, 100, 'the first report holds every service');
    stats.request(stats.service('/s7:0'), '10.0.0.7:31000', 503, 0.002);
    assert.deepEqual(report(), ['/s7:0'], 'then only the one that moved');
    assert.deepEqual(report(), [], 'nothing moved: nothing sent');
    // A backend replaced by another within one interval, no request since: the service is sent again.
    stats.forgetBackend('/s5:0', '10.0.0.5:31000');
    stats.addBackend('/s5:0', '10.0.0.55:31000');
    assert.deepEqual(report(), ['/s5:0'], 'a backend swapped for another');
    stats.forgetService('/s3:0');
    assert.deepEqual(report(), []);
    assert.equal(primary!.services['/s3:0'], undefined, 'a forgotten service leaves the primary too');
  });
});
