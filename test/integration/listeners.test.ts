// A service port that cannot be bound: the error names it, is counted once, and other services serve.
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { describe, it } from 'node:test';
import { app, startHarness } from '../support/harness.js';
import { freePort, get, until, untilServed } from '../support/net.js';

describe('listeners', () => {
  it('a service port held by another process is reported once; the other services are served; it is taken when freed, with no Marathon change', async () => {
    const h = await startHarness();
    const squatter = createServer();
    const [busy, fine] = [await freePort(), await freePort()];
    await new Promise<void>((r) => squatter.listen(busy, '127.0.0.1', r));
    try {
      const b = await h.httpBackend('b');
      h.marathon.putApp(app('/busy', busy, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      h.marathon.putApp(app('/fine', fine, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      await until(async () => (await get(`http://127.0.0.1:${fine}/`)).status === 200, 'the other service served');
      const health = await until(async () => {
        const body = (await get(`${h.admin}/_haproxy_health_check`)).json<{ listeners: { key: string; error: string }[] }>();
        return body.listeners.length > 0 ? body : null;
      }, 'the listener error in the health detail');
      assert.equal(health.listeners[0]!.key, `127.0.0.1:${busy}`);
      assert.match(health.listeners[0]!.error, /EADDRINUSE.*another process or listener holds it/);
      // More table changes retry the port; the counter still counts the failure once.
      // (Addresses that take no traffic: nothing is sent to /fine after this.)
      for (let i = 1; i <= 3; i += 1) h.marathon.startTask('/fine', { host: `10.255.0.${i}`, ports: [31000] });
      await h.waitTable((t) => t.services.find((s) => s.appId === '/fine')!.backends.length === 4, 'three more tables');
      assert.equal(await h.metric('turbine_listener_errors_total', { reason: 'in-use' }), 1);
      await new Promise<void>((r) => squatter.close(() => r()));
      await untilServed(`http://127.0.0.1:${busy}/`, 'the freed port taken');
    } finally {
      squatter.close();
      await h.close();
    }
  });

  it('connections beyond --maxconn get a 503 with a clear text; they are counted', async () => {
    const h = await startHarness({ maxconn: 2 });
    const held: ReturnType<typeof connect>[] = [];
    try {
      const port = await freePort();
      const b = await h.httpBackend('b');
      h.marathon.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      await h.waitTable((t) => t.services.length === 1, 'the service');
      for (let i = 0; i < 2; i += 1) {
        const s = connect(port, '127.0.0.1');
        await new Promise((r) => s.on('connect', r));
        held.push(s);
      }
      await until(async () => await h.metric('turbine_active_connections', { listener: `127.0.0.1:${port}` }) === 2, 'two held');
      const reply = await new Promise<string>((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
        let text = '';
        s.on('data', (d: Buffer) => { text += d; });
        s.on('close', () => resolve(text));
        s.on('error', () => resolve(text));
      });
      assert.match(reply, /^HTTP\/1\.1 503[^]*too many open connections/);
      assert.equal(await h.metric('turbine_client_errors_total', { reason: 'maxconn' }), 1);
    } finally {
      for (const s of held) s.destroy();
      await h.close();
    }
  });
});
