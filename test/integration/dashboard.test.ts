// The Grafana dashboard and the Prometheus alert rules only query metrics that /metrics exports
// (with workers, after real traffic, a failing backend and a stream reconnect).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { app, startHarness } from '../support/harness.js';
import { freePort, get, until } from '../support/net.js';

const CONFIG = resolve(dirname(fileURLToPath(import.meta.url)), '../../../config');

/** Every expression a dashboard panel, a template variable or an alert rule evaluates. */
function expressions(): string[] {
  const dashboard = JSON.parse(readFileSync(`${CONFIG}/grafana/turbine-dashboard.json`, 'utf8')) as {
    panels: { targets?: { expr: string }[] }[];
    templating: { list: { query?: { query: string } }[] };
  };
  const rules = readFileSync(`${CONFIG}/prometheus/turbine-alerts.yml`, 'utf8');
  return [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dashboard.templating.list.flatMap((v) => (v.query?.query ? [v.query.query] : [])),
    // expr: one line, or a block scalar up to the next key.
    ...[...rules.matchAll(/expr: (\|\n(?:\s{10,}.*\n)+|.*)/g)].map((m) => m[1]!),
  ];
}

/** The metric a series name belongs to: histogram series are exported as _bucket, _sum and _count. */
const metricNames = (expr: string) => [...new Set(expr.match(/\b(?:turbine|nodejs|process)_[a-z0-9_]+/g) ?? [])];

describe('Grafana dashboard and alert rules', () => {
  it('name only metrics that /metrics exports', async () => {
    const exprs = expressions();
    assert.ok(exprs.length >= 30, `found ${exprs.length} expressions`);
    const wanted = [...new Set(exprs.flatMap(metricNames))];
    assert.ok(wanted.includes('turbine_worker_cpu_seconds_total') && wanted.includes('turbine_listener_up'), wanted.join(' '));
    const h = await startHarness({ workers: 2 });
    const squatter = createServer();
    try {
      const [web, dead, held] = [await freePort(), await freePort(), await freePort()];
      await new Promise<void>((r) => squatter.listen(held, '127.0.0.1', r));
      const b = await h.httpBackend('b');
      h.marathon.putApp(app('/web', web, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'web.example.com' }), [{ host: b.host, ports: [b.port] }]);
      h.marathon.putApp(app('/dead', dead, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [await freePort()] }]);
      h.marathon.putApp(app('/held', held, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      await h.waitTable((t) => t.services.length === 3, 'three services');
      h.marathon.dropStreams();
      let missing: string[] = [];
      await until(async () => {
        await get(`http://127.0.0.1:${web}/`).catch(() => null);
        for (let i = 0; i < 3; i += 1) await get(`http://127.0.0.1:${dead}/`).catch(() => null);
        await get(`http://127.0.0.1:${h.httpPort}/`, { host: 'nobody.example.com' }).catch(() => null);
        const text = (await get(`${h.admin}/metrics`)).text;
        missing = wanted.filter((name) => !new RegExp(`^${name}[{ ]`, 'm').test(text));
        return missing.length === 0;
      }, 'every metric the dashboard and rules use', 15_000).catch(() => null);
      assert.deepEqual(missing, []);
    } finally {
      squatter.close();
      await h.close();
    }
  });
});
