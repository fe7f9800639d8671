// Blue/green (HAPROXY_DEPLOYMENT_GROUP): both colours serve one port, the old colour's tasks that
// marathon-lb's zdd rules drain get no new requests, and X-Marathon-App-Id finds the group.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, get } from '../support/net.js';

describe('blue/green deployment groups', () => {
  let h: Harness;
  let port = 0;

  before(async () => {
    h = await startHarness({ activeHealthChecks: false });
    const [g1, g2, b1] = [await h.httpBackend('green-1'), await h.httpBackend('green-2'), await h.httpBackend('blue-1')];
    port = await freePort();
    const labels = (colour: string, startedAt: string) => ({ HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_0_PORT: String(port),
      HAPROXY_DEPLOYMENT_GROUP: 'web', HAPROXY_DEPLOYMENT_COLOUR: colour, HAPROXY_DEPLOYMENT_STARTED_AT: startedAt });
    h.marathon.putApp(app('/web-green', 10101, labels('green', '2026-01-01T00:00:00.000Z'), { instances: 2 }),
      [{ id: 'web-green.a', host: g1.host, ports: [g1.port] }, { id: 'web-green.b', host: g2.host, ports: [g2.port] }]);
    // The new colour has one task up: marathon-lb drains one old task, the lowest task id.
    h.marathon.putApp(app('/web-blue', 10102, labels('blue', '2026-02-01T00:00:00.000Z'), { instances: 1 }),
      [{ id: 'web-blue.a', host: b1.host, ports: [b1.port] }]);
    await h.waitTable((t) => t.services.some((s) => s.draining.length === 1), 'one old task draining');
  });
  after(() => h.close());

  it('the drained old task gets no new requests; the other old task and the new one share them', async () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i += 1) {
      const backend = (await get(`http://127.0.0.1:${port}/`, { connection: 'close' })).json().backend as string;
      seen.set(backend, (seen.get(backend) ?? 0) + 1);
    }
    assert.equal(seen.get('green-1'), undefined, `green-1 drains; got ${JSON.stringify([...seen])}`);
    assert.ok((seen.get('green-2') ?? 0) > 0 && (seen.get('blue-1') ?? 0) > 0, JSON.stringify([...seen]));
  });

  it('X-Marathon-App-Id names the group', async () => {
    assert.equal((await get(`http://127.0.0.1:${h.appidPort}/`, { 'x-marathon-app-id': '/web', connection: 'close' })).status, 200);
  });
});
