// /metrics writes its scrape-time metrics itself, a slice at a time: the text must be what
// prom-client would write for the same samples, odd label values included, and a large scrape
// must let the event loop turn (serve traffic) before it is done.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect } from 'node:net';
import client from 'prom-client';
import { AdminServer } from '../../src/admin/server.js';
import { sliced } from '../../src/admin/slices.js';
import { Metrics, type BackendState, type MetricSources } from '../../src/observability/metrics.js';
import { ProxyStats } from '../../src/observability/stats.js';
import { readCountingTurns } from '../support/loop.js';

function sources(stats: ProxyStats, backends: BackendState[]): MetricSources {
  return {
    traffic: () => stats.snapshot({}),
    backends: () => backends,
    ejection: () => [{ service: '/web:0', capped: true, panic: false }],
    listeners: () => [{ key: ':80', kind: 'http', error: null }, { key: ':443', kind: 'https', error: 'in use' }],
    workers: () => [{ pid: 7, cpuSeconds: 1.5, residentBytes: 1e8, eventLoopLagSeconds: 0.002 }],
    workerRestarts: () => 2,
  };
}

/** The same registry as prom-client renders it: its own metrics plus the scraped ones aggregated. */
function promClientText(metrics: Metrics): Promise<string> {
  return client.Registry.merge([metrics.registry, client.AggregatorRegistry.aggregate([metrics.registry.scrapedAsJSON()])]).metrics();
}

/** 1,000 services of 10 backends, each with a request: about 40,000 lines. */
function tenThousandBackends(): { metrics: Metrics } {
  const stats = new ProxyStats();
  const backends: BackendState[] = [];
  for (let s = 0; s < 1000; s += 1) {
    const service = stats.service(`/app-${s}:0`);
    for (let b = 0; b < 10; b += 1) {
      const address = `10.0.${s % 250}.${b}:${31000 + s}`;
      backends.push({ service: `/app-${s}:0`, backend: address, reasons: b === 0 ? ['draining'] : [] });
      stats.request(service, address, 200, 0.001);
    }
  }
  return { metrics: new Metrics(sources(stats, backends), { defaultMetrics: false }) };
}

describe('/metrics text', () => {
  it('is what prom-client writes for the same samples, label values with quotes, backslashes and newlines escaped', async () => {
    const stats = new ProxyStats();
    const web = stats.service('/web:0');
    stats.request(web, '10.0.0.1:31000', 200, 0.003);
    stats.request(web, '10.0.0.1:31000', 503, 0.2);
    stats.request(web, '10.0.0.2:31000', 404, 12);
    stats.tcpConnection(stats.service('/db:0'), '10.0.0.3:5432');
    stats.error(web, 'connect');
    stats.clientError(':80', 'bad-request');
    stats.certificateError('/etc/ssl/a "quoted"\\dir\nname.pem', 'invalid');
    const metrics = new Metrics(sources(stats, [
      { service: '/web:0', backend: '10.0.0.1:31000', reasons: [] },
      { service: '/web:0', backend: '10.0.0.2:31000', reasons: ['active-check', 'ejected'] },
    ]), { defaultMetrics: false });
    metrics.marathonEvents.inc({ type: 'status_update_event' });

    const text = await metrics.registry.metrics();
    assert.equal(text, await promClientText(metrics));
    assert.match(text, /^turbine_tls_certificate_errors_total\{certificate="\/etc\/ssl\/a \\"quoted\\"\\\\dir\\nname\.pem",reason="invalid"\} 1$/m);
    assert.match(text, /^turbine_backend_down_reason\{service="\/web:0",backend="10\.0\.0\.2:31000",reason="ejected"\} 1$/m);
    assert.match(text, /^turbine_request_duration_seconds_bucket\{service="\/web:0",le="\+Inf"\} 3$/m);
  });

  it('is served over HTTP whole, slice after slice, with nothing left on the response per slice; a scraper that stops reading and leaves costs nothing', async () => {
    const { metrics } = tenThousandBackends();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const admin = new AdminServer({
      registry: metrics.registry, health: () => ({ ready: true, draining: false, problem: null, detail: {} }), routes: () => ({}), stats: () => ({}),
      haproxyCsv: () => '', vhostMap: () => [], appMap: () => [], resync: () => {}, pids: () => [],
    });
    const port = await admin.listen('127.0.0.1', 0);
    try {
      const stalled = connect(port, '127.0.0.1');
      stalled.write('GET /metrics HTTP/1.1\r\nhost: admin\r\n\r\n');
      await new Promise((resolve) => stalled.once('data', resolve));
      stalled.pause();
      await new Promise((resolve) => setTimeout(resolve, 200));
      stalled.destroy();
      for (let i = 0; i < 2; i += 1) {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`);
        assert.equal(res.status, 200);
        assert.equal(await res.text(), await metrics.registry.metrics());
      }
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
      assert.deepEqual(warnings.map((w) => w.name), []);
    } finally {
      process.off('warning', onWarning);
      await admin.close();
    }
  });

  it('of 10,000 backends is the same text, written in slices with the event loop turning between them', async () => {
    const { metrics } = tenThousandBackends();
    const { slices, turns } = await readCountingTurns(sliced(await metrics.registry.text()));
    assert.ok(slices.length > 10, `${slices.length} slices`);
    assert.ok(turns >= slices.length - 1, `the event loop turned ${turns} times while ${slices.length} slices were written`);
    assert.equal(slices.join(''), await promClientText(metrics));
  });
});
