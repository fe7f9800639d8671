// /metrics checked by the real promtool (Debian package prometheus), after real traffic.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { app, startHarness } from '../support/harness.js';
import { freePort, get, tcpRoundTrip } from '../support/net.js';

describe('Prometheus exposition', () => {
  it('promtool check metrics accepts /metrics after HTTP, TCP and failed traffic', async () => {
    const h = await startHarness();
    try {
      const [web, tcp, dead] = [await freePort(), await freePort(), await freePort()];
      const b = await h.httpBackend('b');
      const e = await h.tcpBackend('e');
      h.marathon.putApp(app('/web', web, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'web.example.com' }), [{ host: b.host, ports: [b.port] }]);
      h.marathon.putApp(app('/tcp', tcp, { HAPROXY_GROUP: 'external' }), [{ host: e.host, ports: [e.port] }]);
      h.marathon.putApp(app('/dead', dead, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [await freePort()] }]);
      await h.waitTable((t) => t.services.length === 3, 'three services');
      for (let i = 0; i < 5; i += 1) await get(`http://127.0.0.1:${web}/`);
      await tcpRoundTrip(tcp, 'x');
      assert.equal((await get(`http://127.0.0.1:${dead}/`)).status, 503);
      const text = (await get(`${h.admin}/metrics`)).text;
      for (const name of ['turbine_requests_total', 'turbine_request_duration_seconds_bucket', 'turbine_tcp_connections_total',
        'turbine_errors_total', 'turbine_marathon_events_total', 'turbine_routing_convergence_seconds_bucket', 'nodejs_eventloop_lag_seconds']) {
        assert.match(text, new RegExp(`^${name}[{ ]`, 'm'), name);
      }
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(check.error, undefined, 'promtool must be installed (Debian package prometheus)');
      assert.equal(check.status, 0, check.stdout + check.stderr);
    } finally {
      await h.close();
    }
  });
});
