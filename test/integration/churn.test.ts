// Steady client load while Marathon changes underneath: 50 random scale-ups, kills and health
// flips. A killed task's process keeps running for a grace period after TASK_KILLED (as Mesos
// gives it); at least two healthy tasks remain at every moment. No request may fail.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeMarathon, type FakeTask } from '../../src/demo/fake-marathon.js';
import { startHttpBackend } from '../../src/demo/backends.js';
import { app, startHarness } from '../support/harness.js';
import { freePort, get } from '../support/net.js';

describe('churn', () => {
  it('50 random scale-ups, kills and health flips under load: no request fails', async () => {
    const marathon = new FakeMarathon({
      stopDelayMs: 300,
      launcher: async () => {
        const b = await startHttpBackend('churn');
        return { host: b.host, ports: [b.port], stop: b.stop };
      },
    });
    await marathon.listen();
    const h = await startHarness({ activeHealthChecks: false }, marathon);
    let stop = false;
    try {
      const port = await freePort();
      marathon.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }, { healthChecks: [{ protocol: 'COMMAND', command: { value: 'true' } }] }));
      await marathon.scale('/web', 3);
      await h.waitTable((t) => t.services[0]?.backends.length === 3, 'three healthy tasks');

      const failures: string[] = [];
      let ok = 0;
      const clients = Array.from({ length: 4 }, async () => {
        while (!stop) {
          try {
            const res = await get(`http://127.0.0.1:${port}/`);
            if (res.status === 200) ok += 1;
            else failures.push(`${res.status} ${res.text.trim()}`);
          } catch (err) {
            failures.push((err as Error).message);
          }
        }
      });

      const unhealthy = new Set<string>();
      const healthy = () => marathon.tasksOf('/web').filter((t) => !unhealthy.has(t.id));
      const pick = (tasks: FakeTask[]) => tasks[Math.floor(Math.random() * tasks.length)]!;
      const counts = { scale: 0, kill: 0, flip: 0 };
      for (let op = 0; op < 50; op += 1) {
        const roll = Math.random();
        if (roll < 0.35 || healthy().length < 3) {
          await marathon.scale('/web', marathon.tasksOf('/web').length + 1);
          counts.scale += 1;
        } else if (roll < 0.65) {
          const victim = pick(healthy());
          unhealthy.delete(victim.id);
          marathon.killTask(victim.id);
          counts.kill += 1;
        } else {
          const sick = [...unhealthy];
          if (sick.length > 0 && Math.random() < 0.5) {
            marathon.setHealth(sick[0]!, true);
            unhealthy.delete(sick[0]!);
          } else {
            const task = pick(healthy());
            marathon.setHealth(task.id, false);
            unhealthy.add(task.id);
          }
          counts.flip += 1;
        }
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 20));
      }
      await new Promise((r) => setTimeout(r, 300));
      stop = true;
      await Promise.all(clients);
      assert.deepEqual(failures, [], `operations: ${JSON.stringify(counts)}`);
      assert.ok(ok > 500, `only ${ok} requests completed`);
      const expected = healthy().length;
      await h.waitTable((t) => t.services[0]!.backends.length === expected, `the table matching Marathon (${expected} healthy)`);
    } finally {
      stop = true;
      await h.close();
    }
  });
});
