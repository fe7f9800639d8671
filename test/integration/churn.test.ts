// Tasks killed while clients send: two mechanisms keep requests whole, and each is tested alone,
// where the other cannot help. Draining: a killed task's process runs on for Mesos's grace period,
// and requests already on it finish there; POSTs with a body are never retried, so only draining
// saves them. Retry: a task whose process dies before Marathon says so has nothing to drain;
// idempotent GETs that find it dead are sent to another task, so only retry saves them.
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { startHttpBackend, type RunningBackend } from '../../src/demo/backends.js';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { app, startHarness } from '../support/harness.js';
import { freePort, get, until } from '../support/net.js';

const webApp = (port: number) => app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' });

/** A backend that holds every request until `release()`, then answers with its name. */
async function holdingBackend(name: string) {
  const held: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => held.push(res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    name, host: '127.0.0.1', port: (server.address() as AddressInfo).port,
    held: () => held.length,
    release() {
      for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ backend: name }));
    },
    async stop() {
      this.release();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A POST with a body, on its own connection: the status and the backend that answered. */
function post(port: number): Promise<{ status: number; backend: string | null }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/orders', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c; });
      res.on('end', () => {
        let backend: string | null = null;
        try { backend = (JSON.parse(text) as { backend: string }).backend; } catch { /* an error page */ }
        resolve({ status: res.statusCode ?? 0, backend });
      });
    });
    req.on('error', reject);
    req.end('{"item":1}');
  });
}

describe('churn', () => {
  it('draining alone: POSTs in flight on killed tasks finish on them, round after round', async () => {
    type Holding = Awaited<ReturnType<typeof holdingBackend>>;
    const byPort = new Map<number, Holding>();
    const marathon = new FakeMarathon({
      stopDelayMs: 60_000, // the grace period outlasts the test: the process is stopped by the test
      launcher: async () => {
        const b = await holdingBackend(`task-${byPort.size}`);
        byPort.set(b.port, b);
        return { host: b.host, ports: [b.port] };
      },
    });
    await marathon.listen();
    const h = await startHarness({ activeHealthChecks: false, drainTimeout: 60 }, marathon);
    try {
      const port = await freePort();
      marathon.putApp(webApp(port));
      await marathon.scale('/web', 3);
      await h.waitTable((t) => t.services[0]?.backends.length === 3, 'three tasks');
      for (let round = 0; round < 5; round += 1) {
        const [victim] = marathon.tasksOf('/web');
        const held = byPort.get(victim!.ports[0]!)!;
        const replies: Promise<{ status: number; backend: string | null }>[] = [];
        while (held.held() === 0 && replies.length < 60) {
          replies.push(post(port));
          await until(() => [...byPort.values()].reduce((n, b) => n + b.held(), 0) === replies.length, 'the POSTs held by the tasks');
        }
        assert.ok(held.held() > 0, `round ${round}: a POST is on the task to be killed`);
        marathon.killTask(victim!.id);
        await h.waitTable((t) => !t.services[0]!.backends.some((b) => b.taskId === victim!.id), `round ${round}: the killed task out`);
        await marathon.scale('/web', 3);
        for (const b of byPort.values()) b.release();
        const results = await Promise.all(replies);
        assert.deepEqual(results.filter((r) => r.status !== 200), [], `round ${round}: every POST answered 200`);
        assert.ok(results.some((r) => r.backend === held.name), `round ${round}: the killed task answered its POSTs`);
        await held.stop();
        byPort.delete(held.port);
      }
    } finally {
      await h.close();
      await Promise.all([...byPort.values()].map((b) => b.stop()));
    }
  });

  it('retry alone: GETs under load lose no request when tasks die before Marathon reports them', async () => {
    const processes = new Map<number, RunningBackend>();
    const marathon = new FakeMarathon({
      launcher: async () => {
        const b = await startHttpBackend(`task-${processes.size}`);
        processes.set(b.port, b);
        return { host: b.host, ports: [b.port] };
      },
    });
    await marathon.listen();
    const h = await startHarness({ activeHealthChecks: false }, marathon);
    let stop = false;
    try {
      const port = await freePort();
      marathon.putApp(webApp(port));
      await marathon.scale('/web', 3);
      await h.waitTable((t) => t.services[0]?.backends.length === 3, 'three tasks');
      const failures: string[] = [];
      let served = 0;
      const clients = Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 5000 && !stop; i += 1) {
          try {
            const res = await get(`http://127.0.0.1:${port}/`);
            if (res.status === 200) served += 1;
            else failures.push(`${res.status} ${res.text.trim()}`);
          } catch (err) {
            failures.push((err as Error).message);
          }
        }
      });
      for (let round = 0; round < 5; round += 1) {
        const [victim] = marathon.tasksOf('/web');
        const errorsBefore = await h.metric('turbine_errors_total', { service: '/web:0' });
        await processes.get(victim!.ports[0]!)!.stop(); // the process is gone: nothing left to drain
        processes.delete(victim!.ports[0]!);
        // Requests meet the dead task (each costs a recorded failure) before Marathon says a word.
        await until(async () => await h.metric('turbine_errors_total', { service: '/web:0' }) > errorsBefore, `round ${round}: the dead task met`);
        const servedNow = served;
        await until(() => served > servedNow + 20, `round ${round}: more requests served`);
        marathon.endTask(victim!.id, 'TASK_FAILED');
        await marathon.scale('/web', 3);
      }
      stop = true;
      await Promise.all(clients);
      assert.deepEqual(failures, []);
    } finally {
      stop = true;
      await h.close();
      await Promise.all([...processes.values()].map((b) => b.stop()));
    }
  });
});
