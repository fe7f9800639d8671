// Turbine's own health checks, from the app's Marathon healthChecks: a backend failing its check
// gets no traffic until it passes again; HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX picks the port;
// Marathon's gracePeriodSeconds spares a task that is still starting.
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

/** Which backends answer six requests on the service port, sorted. */
async function backendsAnswering(port: number): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < 6; i += 1) seen.add((await get(`http://127.0.0.1:${port}/`)).json().backend as string);
  return [...seen].sort();
}

function closeAll(servers: Server[]): void {
  for (const s of servers) { s.closeAllConnections(); s.close(); }
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
      assert.deepEqual(await backendsAnswering(port), ['b']);
      a.healthy.value = true;
      await until(async () => await h.metric('turbine_backend_up', { backend: address }) === 1, 'a back', 5000);
      assert.deepEqual(await backendsAnswering(port), ['a', 'b']);
    } finally {
      closeAll([a.server, b.server]);
      await h.close();
    }
  });

  const graceCheck = { protocol: 'HTTP', path: '/health', portIndex: 0, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 1, gracePeriodSeconds: 3600 };

  it('within gracePeriodSeconds of its start, a task that has not passed yet is not ejected by failing checks and keeps its traffic', async () => {
    // Without --health-check the table holds tasks Marathon has no result for yet: the starting ones.
    const h = await startHarness({ activeHealthChecks: true, healthCheck: false });
    const [synced, evented] = [await checkedBackend('synced'), await checkedBackend('evented')];
    try {
      synced.healthy.value = false;
      evented.healthy.value = false;
      const port = await freePort();
      // One task known from the full sync, one started later by events: both carry their start time.
      h.marathon.putApp(app('/booting', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }, { healthChecks: [graceCheck] }),
        [{ host: '127.0.0.1', ports: [synced.port] }]);
      await h.waitTable((t) => t.services[0]?.backends.length === 1, 'the synced task');
      await until(() => h.turbine.sync.getStatus().state === 'connected', 'the event stream open');
      h.marathon.startTask('/booting', { host: '127.0.0.1', ports: [evented.port] });
      await h.waitTable((t) => t.services[0]?.backends.length === 2, 'the evented task');
      // fall is 2 (maxConsecutiveFailures + 1): four failures each would have ejected both twice over.
      await until(() => synced.checks.count >= 5 && evented.checks.count >= 5, 'several failed checks of each', 15_000);
      for (const b of [synced, evented]) {
        assert.equal(await h.metric('turbine_backend_down_reason', { backend: `127.0.0.1:${b.port}` }), 0);
        assert.equal(await h.metric('turbine_backend_up', { backend: `127.0.0.1:${b.port}` }), 1);
      }
      assert.deepEqual(await backendsAnswering(port), ['evented', 'synced']);
    } finally {
      closeAll([synced.server, evented.server]);
      await h.close();
    }
  });

  it('the grace period ends at the first passing check: a task that passed once is ejected by failures, as Marathon counts them', async () => {
    const h = await startHarness({ activeHealthChecks: true });
    const [a, b] = [await checkedBackend('a'), await checkedBackend('b')];
    try {
      const port = await freePort();
      h.marathon.putApp(app('/started', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }, { healthChecks: [graceCheck] }),
        [{ host: '127.0.0.1', ports: [a.port] }, { host: '127.0.0.1', ports: [b.port] }]);
      await until(() => a.checks.count >= 2, 'a passed a check');
      a.healthy.value = false;
      const address = `127.0.0.1:${a.port}`;
      await until(async () => await h.metric('turbine_backend_down_reason', { backend: address, reason: 'active-check' }) === 1, 'a out', 10_000);
      assert.deepEqual(await backendsAnswering(port), ['b']);
    } finally {
      closeAll([a.server, b.server]);
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
      closeAll([health.server]);
      await h.close();
    }
  });
});
