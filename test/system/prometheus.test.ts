// A real Prometheus server (Debian package prometheus) scrapes Turbine; its API then answers `up`
// and a Turbine series with the labels Turbine exported.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { app, startHarness } from '../support/harness.js';
import { freePort, get, until } from '../support/net.js';

interface QueryResult { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }

describe('Prometheus', () => {
  it('scrapes /metrics: up is 1 and turbine_requests_total carries service, backend and code', async () => {
    const h = await startHarness();
    const dir = mkdtempSync(join(tmpdir(), 'turbine-prom-'));
    const promPort = await freePort();
    const adminHostPort = h.admin.replace('http://', '');
    writeFileSync(join(dir, 'prometheus.yml'), [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: turbine',
      `    static_configs: [{ targets: ["${adminHostPort}"] }]`,
    ].join('\n'));
    const prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    try {
      const port = await freePort();
      const b = await h.httpBackend('b');
      h.marathon.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      await h.waitTable((t) => t.services.length === 1, 'the service');
      for (let i = 0; i < 3; i += 1) await get(`http://127.0.0.1:${port}/`);
      const query = async (q: string) => (await get(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`)).json<QueryResult>().data.result;
      const up = await until(async () => (await query('up{job="turbine"}')).find((r) => r.value[1] === '1'), 'up == 1', 30_000);
      assert.equal(up.metric.instance, adminHostPort);
      const requests = await until(async () => (await query('turbine_requests_total{service="/web:0"}'))[0], 'a Turbine series', 30_000);
      assert.equal(requests.metric.backend, `${b.host}:${b.port}`);
      assert.equal(requests.metric.code, '2xx');
      assert.equal(requests.value[1], '3');
    } finally {
      prometheus.kill('SIGTERM');
      await h.close();
    }
  });
});
