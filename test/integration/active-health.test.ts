// Turbine's own health checks, from the app's Marathon healthChecks: a backend failing its check
// gets no traffic until it passes again; HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX picks the port.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { app, startHarness } from '../support/harness.js';
import { freePort, get, until } from '../support/net.js';

async function checkedBackend(name: string): Promise<{ server: Server; port: number; healthy: { value: boolean }; checks: { count: number } }> {
  const healthy = { value: true };
  const checks = { count: 0 };
  const server = createServer((req, res) => {
    if (req.url === '/health') {
      checks.count += 1;
      res.writeHead(healthy.value ? 200 : 500).end();
      return;
    }
    res.end(JSON.stringify({ backend: name }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, healthy, checks };
}

describe('active health checks', () => {
  it('a backend failing its HTTP check is taken out, and back in once it passes', async () => {
    const h = await startHarness({ activeHealthChecks: true });
    const [a, b] = [await checkedBackend('a'), await checkedBackend('b')];
    try {
      const port = await freePort();
      h.marathon.putApp(app('/checked', port, { HAPROXY_GROUP: 'external' }, {
        healthChecks: [{ protocol: 'HTTP', path: '/health', portIndex: 0, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 1, gracePeriodSeconds: 0 }],
      }), [{ host: '127.0.0.1', ports: [a.port], alive: true }, { host: '127.0.0.1', ports: [b.port], alive: true }]);
      await h.waitTable((t) => t.services[0]?.backends.length === 2, 'two backends');
      await until(() => a.checks.count > 0 && b.checks.count > 0, 'both checked');
      a.healthy.value = false;
      const address = `127.0.0.1:${a.port}`;
      await until(async () => await h.metric('turbine_backend_down_reason', { backend: address, reason: 'active-check' }) === 1, 'a out', 5000);
      for (let i = 0; i < 6; i += 1) assert.equal((await get(`http://127.0.0.1:${port}/`)).json().backend, 'b');
      a.healthy.value = true;
      await until(async () => await h.metric('turbine_backend_up', { backend: address }) === 1, 'a back', 5000);
      const seen = new Set<string>();
      for (let i = 0; i < 6; i += 1) seen.add((await get(`http://127.0.0.1:${port}/`)).json().backend as string);
      assert.deepEqual([...seen].sort(), ['a', 'b']);
    } finally {
      for (const s of [a.server, b.server]) { s.closeAllConnections(); s.close(); }
      await h.close();
    }
  });

  it('HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX checks the task port it names', async () => {
    const h = await startHarness({ activeHealthChecks: true });
    const traffic = await h.httpBackend('traffic');
    const health = await checkedBackend('health');
    try {
      const port = await freePort();
      h.marathon.putApp({
        id: '/two-ports', labels: { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX: '1', HAPROXY_1_ENABLED: 'false' },
        portDefinitions: [{ port }, { port: await freePort() }],
        healthChecks: [{ protocol: 'HTTP', path: '/health', portIndex: 0, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 1 }],
      }, [{ host: '127.0.0.1', ports: [traffic.port, health.port], alive: true }]);
      await until(() => health.checks.count > 0, 'the check on port index 1');
      assert.equal(traffic.hits(), 0, 'the traffic port is not the one checked');
    } finally {
      health.server.closeAllConnections();
      health.server.close();
      await h.close();
    }
  });
});
