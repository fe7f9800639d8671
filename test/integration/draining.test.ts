// A task that leaves Marathon while work is on it: the work finishes (up to the drain timeout),
// the backend is shown as draining meanwhile, and gets no new traffic.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, get, until } from '../support/net.js';

interface Routes { draining: { service: string; backend: string }[] }

/**
 * A Marathon-health-checked app whose one backend holds the request sent to /held (in flight
 * here as `held`) until `release()`; other paths are answered with their name after `laterMs`.
 */
async function heldOnCheckedApp(h: Harness, id: string, laterMs = 0) {
  let release: (() => void) | null = null;
  const server: Server = createServer((req, res) => {
    if (req.url === '/held') release = () => res.end('held');
    else setTimeout(() => res.end(req.url!.slice(1)), laterMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const backendPort = (server.address() as AddressInfo).port;
  const port = await freePort();
  h.marathon.putApp(app(id, port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }, { healthChecks: [{ protocol: 'COMMAND', command: { value: 'true' } }] }),
    [{ host: '127.0.0.1', ports: [backendPort], alive: true }]);
  await h.waitTable((t) => t.services[0]?.backends.length === 1, 'the healthy task');
  const held = get(`http://127.0.0.1:${port}/held`);
  await until(() => release !== null, 'the request at the backend');
  return {
    port, held, address: `127.0.0.1:${backendPort}`, taskId: h.marathon.tasksOf(id)[0]!.id,
    release: () => release!(),
    close: () => { server.closeAllConnections(); server.close(); },
  };
}

describe('draining', () => {
  it('a request in flight on a killed task completes; the backend is draining until it does', async () => {
    const h = await startHarness();
    let release: (() => void) | null = null;
    const slow: Server = createServer((_req, res) => { release = () => res.end('finished'); });
    let open = 0;
    slow.on('connection', (s) => { open += 1; s.on('close', () => { open -= 1; }); });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const address = `127.0.0.1:${(slow.address() as AddressInfo).port}`;
    try {
      const port = await freePort();
      h.marathon.putApp(app('/slow', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [(slow.address() as AddressInfo).port] }]);
      await h.waitTable((t) => t.services.length === 1, 'the service');
      const inFlight = get(`http://127.0.0.1:${port}/`);
      await until(() => release !== null, 'the request at the backend');
      h.marathon.killTask(h.marathon.tasksOf('/slow')[0]!.id);
      await h.waitTable((t) => t.services[0]!.backends.length === 0, 'the task gone');
      assert.deepEqual((await get(`${h.admin}/routes`)).json<Routes>().draining, [{ service: '/slow:0', backend: address }]);
      assert.equal(await h.metric('turbine_backend_down_reason', { backend: address, reason: 'draining' }), 1);
      assert.equal((await get(`http://127.0.0.1:${port}/`)).status, 503, 'no new request goes to it');
      release!();
      const res = await inFlight;
      assert.equal(res.status, 200);
      assert.equal(res.text, 'finished');
      await until(async () => (await get(`${h.admin}/routes`)).json<Routes>().draining.length === 0, 'draining over');
      // Its connection is closed, not kept idle for reuse (the pool would keep it up to 4 s).
      await until(() => open === 0, 'the drained backend connection closed', 1_500);
    } finally {
      slow.closeAllConnections();
      slow.close();
      await h.close();
    }
  });

  it('a backend Marathon calls unhealthy while a request is on it is one series in /metrics, down for both reasons', async () => {
    const h = await startHarness();
    const sick = await heldOnCheckedApp(h, '/sick');
    try {
      h.marathon.setHealth(sick.taskId, false);
      await h.waitTable((t) => t.services[0]!.backends.length === 0, 'the task taken out');
      const text = (await get(`${h.admin}/metrics`)).text;
      const lines = (name: string) => text.split('\n').filter((l) => l.startsWith(`${name}{`) && l.includes(`backend="${sick.address}"`));
      assert.deepEqual(lines('turbine_backend_up'), [`turbine_backend_up{service="/sick:0",backend="${sick.address}"} 0`], 'one series: Prometheus refuses a scrape that repeats one');
      assert.deepEqual(lines('turbine_backend_down_reason').map((l) => /reason="([^"]+)"/.exec(l)![1]).sort(), ['draining', 'marathon-health']);
      sick.release();
      assert.equal((await sick.held).status, 200);
    } finally {
      sick.close();
      await h.close();
    }
  });

  it('a backend taken out and back while a request is on it is not drained any more: a request sent after its return outlives the drain timeout, and it is up, not draining', async () => {
    const h = await startHarness({ drainTimeout: 0.5 });
    const flap = await heldOnCheckedApp(h, '/flap', 1_000);
    try {
      h.marathon.setHealth(flap.taskId, false);
      await h.waitTable((t) => t.services[0]!.backends.length === 0, 'the task taken out');
      h.marathon.setHealth(flap.taskId, true);
      await h.waitTable((t) => t.services[0]!.backends.length === 1, 'the task back');
      const later = await get(`http://127.0.0.1:${flap.port}/later`);
      assert.equal(later.status, 200, 'not cut at the drain timeout of the first removal');
      assert.equal(later.text, 'later');
      assert.equal(await h.metric('turbine_backend_up', { backend: flap.address }), 1);
      assert.equal(await h.metric('turbine_backend_down_reason', { backend: flap.address, reason: 'draining' }), 0);
      flap.release();
      assert.equal((await flap.held).text, 'held', 'the request of before the removal finishes too');
    } finally {
      flap.close();
      await h.close();
    }
  });

  it('a TCP stream on a killed task keeps working, and is closed at the drain timeout', async () => {
    const h = await startHarness({ drainTimeout: 0.5 });
    try {
      const echo = await h.tcpBackend('echo');
      const port = await freePort();
      h.marathon.putApp(app('/tcp', port, { HAPROXY_GROUP: 'external' }), [{ host: echo.host, ports: [echo.port] }]);
      await h.waitTable((t) => t.services.length === 1, 'the service');
      const socket = connect(port, '127.0.0.1');
      let received = '';
      socket.on('data', (d: Buffer) => { received += d; });
      const closed = new Promise<void>((r) => socket.on('close', () => r()));
      await until(() => received === 'echo:', 'the greeting');
      h.marathon.killTask(h.marathon.tasksOf('/tcp')[0]!.id);
      await h.waitTable((t) => t.services.length === 1 && t.services[0]!.backends.length === 0, 'the task gone');
      socket.write('still here');
      await until(() => received === 'echo:still here', 'the stream still working after the kill');
      assert.deepEqual((await get(`${h.admin}/routes`)).json<Routes>().draining.map((d) => d.backend), [`${echo.host}:${echo.port}`]);
      await closed; // the drain timeout (0.5 s) closes it
      await until(async () => (await get(`${h.admin}/routes`)).json<Routes>().draining.length === 0, 'draining over');
    } finally {
      await h.close();
    }
  });

  it('a TCP stream on a task taken out and back is not closed at the drain timeout, and its backend is not draining', async () => {
    const h = await startHarness({ drainTimeout: 0.5 });
    try {
      const echo = await h.tcpBackend('echo');
      const port = await freePort();
      h.marathon.putApp(app('/tcp-flap', port, { HAPROXY_GROUP: 'external' }, { healthChecks: [{ protocol: 'COMMAND', command: { value: 'true' } }] }),
        [{ host: echo.host, ports: [echo.port], alive: true }]);
      await h.waitTable((t) => t.services[0]?.backends.length === 1, 'the healthy task');
      const socket = connect(port, '127.0.0.1');
      let received = '';
      let closed = false;
      socket.on('data', (d: Buffer) => { received += d; });
      socket.on('close', () => { closed = true; });
      await until(() => received === 'echo:', 'the greeting');
      const task = h.marathon.tasksOf('/tcp-flap')[0]!.id;
      h.marathon.setHealth(task, false);
      await h.waitTable((t) => t.services[0]!.backends.length === 0, 'the task taken out');
      h.marathon.setHealth(task, true);
      await h.waitTable((t) => t.services[0]!.backends.length === 1, 'the task back');
      await new Promise((r) => setTimeout(r, 800)); // past the drain timeout of the removal
      assert.equal(closed, false, 'the stream outlived the drain timeout');
      socket.write('still here');
      await until(() => received === 'echo:still here', 'the stream still working');
      assert.deepEqual((await get(`${h.admin}/routes`)).json<Routes>().draining, []);
      socket.destroy();
    } finally {
      await h.close();
    }
  });
});
