// Logs as an operator reads them: JSON lines, one per change of state, with app, task and backend
// in fields; a storm of failed requests is not a storm of lines.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { app, startHarness } from '../support/harness.js';
import { freePort, get, until, untilServed } from '../support/net.js';

interface Line { level: number; msg: string; [field: string]: unknown }

describe('logs', () => {
  it('one line per change of state, with app, task and backend fields', async () => {
    const lines: Line[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); done(); } });
    const h = await startHarness({ ejectAfterFailures: 3, ejectSeconds: 60, activeHealthChecks: false }, new FakeMarathon(), pino({ level: 'info' }, sink));
    try {
      const [port, dead] = [await freePort(), await freePort()];
      const live = await h.httpBackend('live');
      h.marathon.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }),
        [{ host: '127.0.0.1', ports: [dead] }, { host: live.host, ports: [live.port] }]);
      await h.waitTable((t) => t.services.length === 1, 'the service');
      for (let i = 0; i < 20; i += 1) assert.equal((await get(`http://127.0.0.1:${port}/`)).status, 200);
      await until(() => lines.some((l) => l.msg === 'backend out of rotation'), 'the ejection line');

      assert.ok(lines.some((l) => l.msg === 'Marathon event stream connected' && l.component === 'marathon'));
      const change = lines.find((l) => l.msg === 'routing table changed' && (l.servicesAdded as string[]).includes('/web:0'))!;
      assert.equal(change.backendsAdded, 2);
      const added = lines.filter((l) => l.msg === 'backend added' && l.generation === change.generation);
      assert.deepEqual(added.map((l) => ({ service: l.service, appId: l.appId, backend: l.backend, taskId: l.taskId })).sort((a, b) => String(a.backend).localeCompare(String(b.backend))),
        h.marathon.tasksOf('/web').map((t) => ({ service: '/web:0', appId: '/web', backend: `127.0.0.1:${t.ports[0]}`, taskId: t.id })).sort((a, b) => a.backend.localeCompare(b.backend)));
      const out = lines.filter((l) => l.msg === 'backend out of rotation');
      assert.equal(out.length, 1, 'one line for the change of state, not one per failed request');
      const task = h.marathon.tasksOf('/web')[0]!;
      assert.deepEqual({ backend: out[0]!.backend, appId: out[0]!.appId, taskId: out[0]!.taskId, reasons: out[0]!.reasons },
        { backend: `127.0.0.1:${dead}`, appId: '/web', taskId: task.id, reasons: ['ejected'] });
      assert.equal(lines.filter((l) => l.level >= 40 && l.msg !== 'backend out of rotation').length, 0, JSON.stringify(lines.filter((l) => l.level >= 40)));
    } finally {
      await h.close();
    }
  });

  it('a change of hundreds of backends: the first hundred are listed a line each, the summary counts the rest (no line of kilobytes)', async () => {
    const lines: Line[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); done(); } });
    const h = await startHarness({ activeHealthChecks: false }, new FakeMarathon(), pino({ level: 'info' }, sink));
    try {
      const tasks = Array.from({ length: 150 }, (_, i) => ({ host: '127.0.0.1', ports: [20_000 + i] }));
      h.marathon.putApp(app('/big', await freePort(), { HAPROXY_GROUP: 'external' }), tasks);
      await h.waitTable((t) => t.services[0]?.backends.length === 150, '150 backends');
      const change = await until(() => lines.find((l) => l.msg === 'routing table changed' && l.backendsAdded === 150), 'the summary line');
      assert.equal(change.backendsNotListed, 50);
      assert.equal(lines.filter((l) => l.msg === 'backend added' && l.generation === change.generation).length, 100);
      assert.ok(lines.every((l) => JSON.stringify(l).length < 1000), 'no line of kilobytes');
    } finally {
      await h.close();
    }
  });

  it('Marathon unreachable: retries do not repeat the error line', async () => {
    const lines: Line[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); done(); } });
    const dead = `http://127.0.0.1:${await freePort()}`;
    const h = await startHarness({ marathon: [dead] }, new FakeMarathon(), pino({ level: 'info' }, sink));
    try {
      await until(async () => await h.metric('turbine_marathon_resyncs_total', { scope: 'full', result: 'error' }) >= 4, 'four failed syncs', 15_000);
      await until(async () => await h.metric('turbine_marathon_stream_reconnects_total') >= 4, 'four failed stream attempts', 15_000);
      const errors = lines.filter((l) => l.level >= 50);
      assert.deepEqual(errors.map((l) => l.source).sort(), ['stream', 'sync'], `one line per failing source: ${errors.map((l) => l.msg).join(' | ')}`);
      assert.equal(lines.filter((l) => l.component === 'marathon' && l.level < 50).length, 0, `no line per retry: ${lines.filter((l) => l.component === 'marathon').map((l) => l.msg).join(' | ')}`);
    } finally {
      await h.close();
    }
  });

  it('--access-log: one line per request with service, app, task, backend, status, duration and bytes', async () => {
    const lines: Line[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); done(); } });
    const h = await startHarness({ accessLog: true }, new FakeMarathon(), pino({ level: 'info' }, sink));
    try {
      const port = await freePort();
      const b = await h.httpBackend('logged');
      h.marathon.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      await untilServed(`http://127.0.0.1:${port}/hello?x=1`, 'served');
      const access = await until(() => lines.find((l) => l.msg === 'access'), 'an access line');
      const task = h.marathon.tasksOf('/web')[0]!;
      assert.deepEqual({ service: access.service, appId: access.appId, taskId: access.taskId, backend: access.backend, method: access.method, path: access.path, status: access.status },
        { service: '/web:0', appId: '/web', taskId: task.id, backend: `${b.host}:${b.port}`, method: 'GET', path: '/hello?x=1', status: 200 });
      assert.ok(typeof access.durationMs === 'number' && (access.bytes as number) > 0);
    } finally {
      await h.close();
    }
  });
});
