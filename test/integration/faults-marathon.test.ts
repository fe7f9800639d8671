// Control-plane faults: each test names a way Marathon or its stream misbehaves, and what a user
// of Turbine sees: the last good routing keeps serving, the process stays up, the truth returns.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { startHttpBackend, type RunningBackend } from '../../src/demo/backends.js';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { startTurbineProcess, type TurbineProcess } from '../support/cli.js';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, get, until, untilServed } from '../support/net.js';

const httpApp = (id: string, port: number) => app(id, port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' });

/** /web served by backends a and b, with the event stream open. */
async function webOnTwo(h: Harness): Promise<{ a: RunningBackend; b: RunningBackend }> {
  const [a, b] = [await h.httpBackend('a'), await h.httpBackend('b')];
  h.marathon.putApp(httpApp('/web', await freePort()), [{ host: a.host, ports: [a.port] }, { host: b.host, ports: [b.port] }]);
  await h.waitTable((t) => t.services[0]?.backends.length === 2, 'two backends');
  await until(() => h.turbine.sync.getStatus().state === 'connected', 'the event stream open');
  return { a, b };
}

/** Kills /web's task on `backend` (its events reach Turbine only if the stream is there to carry them). */
function killTaskOn(h: Harness, backend: RunningBackend): void {
  h.marathon.killTask(h.marathon.tasksOf('/web').find((t) => t.ports[0] === backend.port)!.id);
}

/** Waits for /web to be served by `backend` alone. */
function servedByAlone(h: Harness, backend: RunningBackend): Promise<void> {
  return h.waitTable((t) => t.services[0]?.backends.map((x) => x.port).join() === String(backend.port), 'the killed task out of the table');
}

/** The task ports the state file holds now (none while it is missing). */
function savedPorts(path: string): number[] {
  if (!existsSync(path)) return [];
  const saved = JSON.parse(readFileSync(path, 'utf8')) as { apps: { tasks: { ports: number[] }[] }[] };
  return saved.apps.flatMap((a) => a.tasks.flatMap((t) => t.ports));
}

describe('Marathon faults', () => {
  it('state file: written after each change, so a Turbine killed with SIGKILL restarts from it while Marathon is down', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'turbine-state-')), 'state.json');
    const m = new FakeMarathon();
    await m.listen();
    const port = await freePort();
    const [a, b] = [await startHttpBackend('at-sync'), await startHttpBackend('by-event')];
    m.putApp(httpApp('/web', port), [{ host: a.host, ports: [a.port] }]);
    const first = await startTurbineProcess(['--marathon', m.url, '--group', 'external', '--state-file', path]);
    let second: TurbineProcess | null = null;
    try {
      await until(() => savedPorts(path).includes(a.port), 'the full sync saved', 10_000);
      m.startTask('/web', { host: b.host, ports: [b.port] });
      await until(() => savedPorts(path).includes(b.port), 'the task event saved', 10_000);
      first.child.kill('SIGKILL'); // a crash: nothing written on the way out
      assert.equal(await first.exited, 'SIGKILL');
      await m.close();
      second = await startTurbineProcess(['--marathon', `http://127.0.0.1:${await freePort()}`, '--group', 'external', '--state-file', path]);
      await untilServed(`${second.admin}/_haproxy_health_check`, 'ready from the state file', 10_000);
      await until(async () => {
        const seen = new Set<unknown>();
        for (let i = 0; i < 10; i += 1) seen.add((await get(`http://127.0.0.1:${port}/`, { connection: 'close' })).json().backend);
        return seen.has('at-sync') && seen.has('by-event');
      }, 'both saved tasks served with Marathon down');
    } finally {
      first.child.kill('SIGKILL');
      second?.child.kill('SIGKILL');
      await m.close();
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('state file: a change not yet saved is written on stop', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'turbine-state-')), 'state.json');
    const m = new FakeMarathon();
    await m.listen();
    m.putApp(httpApp('/web', await freePort()));
    const h = await startHarness({ stateFile: path }, m);
    const [b, c] = [await h.httpBackend('b'), await h.httpBackend('c')];
    try {
      // b is sent once Turbine has the stream (so every resync has started), and is saved by the
      // end of that resync or by the debounce timer: once b is on disk, nothing is pending. c then
      // has only the debounce timer, which cannot have fired this soon: only the stop can save c.
      await until(() => h.turbine.sync.getStatus().state === 'connected', 'the event stream open');
      m.startTask('/web', { host: b.host, ports: [b.port] });
      await until(() => savedPorts(path).includes(b.port), 'b saved', 10_000);
      m.startTask('/web', { host: c.host, ports: [c.port] });
      await h.waitTable((t) => t.services[0]!.backends.some((x) => x.address === `${c.host}:${c.port}`), 'c routed');
      await h.turbine.stop();
      assert.ok(savedPorts(path).includes(c.port), `saved: ${savedPorts(path).join(', ')}`);
    } finally {
      await m.close();
      await Promise.all(h.backends.map((x) => x.stop()));
    }
  });

  it('state file corrupt, or from an older Turbine: reported with the reason, counted and ignored; Turbine waits for Marathon', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'turbine-state-'));
    const file = (apps: unknown[], format = 'turbine-state/2') => JSON.stringify({ format, savedAt: '2024-01-01T00:00:00.000Z', apps });
    for (const [name, content, reason] of [
      ['truncated', '{"format":"turbine-state/2","apps":[{"id":"/x"', /not JSON/],
      ['a label that is not a string', file([{ id: '/x', labels: { a: 1 }, portDefinitions: [], tasks: [] }]), /label a is not a string/],
      ['a task without an id', file([{ id: '/x', portDefinitions: [{ port: 10001 }], tasks: [{ host: 'agent', ports: [31000] }] }]), /task has no id/],
      ['tasks that are not a list', file([{ id: '/x', tasks: { id: 'x.1' } }]), /tasks is not a list/],
      // As the previous version wrote it: decoded apps, which the decoder cannot read.
      ['the previous version\'s format', file([{ id: '/x', labels: {}, ports: [{ servicePort: 10001, containerPort: null, name: null }], ipPerTask: false, healthChecks: [],
        tasks: [{ id: 'x.1', appId: '/x', host: '10.0.0.1', ports: [31000], ipAddresses: [], state: 'TASK_RUNNING', healthAlive: null, stateAt: 0 }],
        version: null, instances: 1, lastScalingAt: null }], 'turbine-state/1'), /turbine-state\/1 was written by an older Turbine/],
    ] as const) {
      const path = join(dir, `${name}.json`);
      writeFileSync(path, content);
      const lines: { msg: string; err?: string }[] = [];
      const sink = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); done(); } });
      const h = await startHarness({ stateFile: path, marathon: [`http://127.0.0.1:${await freePort()}`] }, new FakeMarathon(), pino({ level: 'error' }, sink));
      try {
        await until(async () => await h.metric('turbine_state_file_errors_total', { op: 'read' }) === 1, `the file with ${name} refused`);
        const refused = lines.find((l) => l.msg === 'state file ignored: it cannot be trusted');
        assert.match(refused?.err ?? '', reason, `${name}: ${JSON.stringify(lines)}`);
        assert.equal((await get(`${h.admin}/_haproxy_health_check`)).status, 503);
        assert.equal(h.turbine.table(), null, 'nothing from the refused file is routed');
      } finally {
        await h.close();
      }
    }
  });

  it('Marathon closing the stream every few events: every change still arrives', async () => {
    const m = new FakeMarathon();
    await m.listen();
    m.dropEvery(3);
    const h = await startHarness({}, m);
    try {
      const port = await freePort();
      const backends = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => h.httpBackend(`b${i}`)));
      m.putApp(httpApp('/web', port));
      for (const b of backends) {
        await until(() => m.streamCount() === 1, 'the stream back');
        m.startTask('/web', { host: b.host, ports: [b.port] }); // three events: the third one cuts the stream
      }
      await h.waitTable((t) => t.services[0]?.backends.length === 6, 'six backends despite the drops');
      assert.ok(await h.metric('turbine_marathon_stream_reconnects_total') >= 2);
    } finally {
      await h.close();
    }
  });

  it('a stream that drops as soon as it opens: each reopening is not a full fetch, and a change nobody announced still arrives', async () => {
    const h = await startHarness({ maxBackoff: 2 });
    try {
      const { a, b } = await webOnTwo(h);
      const [opened, fetched] = [h.marathon.requests.events, h.marathon.requests.apps];
      h.marathon.flap(true);
      h.marathon.dropStreams();
      await new Promise((r) => setTimeout(r, 3000));
      const openings = h.marathon.requests.events - opened;
      const fetches = h.marathon.requests.apps - fetched;
      assert.ok(openings >= 6, `the stream reopened ${openings} times`);
      assert.ok(fetches <= 3, `${fetches} full fetches of /v2/apps for ${openings} openings of the stream`);
      h.marathon.stall(true); // nobody hears this kill: only a full resync tells
      killTaskOn(h, b);
      h.marathon.stall(false);
      await servedByAlone(h, a);
      h.marathon.flap(false);
      await until(() => h.turbine.sync.getStatus().state === 'connected', 'the event stream open again');
    } finally {
      await h.close();
    }
  });

  it('an event Marathon lost is corrected by the full resync every --resync-interval', async () => {
    const h = await startHarness({ resyncInterval: 1, eventStallTimeout: 60 });
    try {
      const { a, b } = await webOnTwo(h);
      const openings = h.marathon.requests.events;
      h.marathon.stall(true); // the stream stays open and says nothing: the kill's event is lost
      killTaskOn(h, b);
      await servedByAlone(h, a);
      assert.equal(h.marathon.requests.events, openings, 'the stream was not reopened: the periodic resync did it');
    } finally {
      h.marathon.stall(false);
      await h.close();
    }
  });

  it('/v2/events refused while /v2/apps works: the apps keep being fetched at the stream\'s reconnects', async () => {
    const h = await startHarness({ maxBackoff: 1 });
    try {
      const { a, b } = await webOnTwo(h);
      h.marathon.failEvents(503);
      h.marathon.dropStreams();
      await until(() => h.turbine.sync.getStatus().state !== 'connected', 'the stream down');
      killTaskOn(h, b); // no stream hears it
      await servedByAlone(h, a);
    } finally {
      h.marathon.failEvents(null);
      await h.close();
    }
  });

  it('a full resync that fails is retried 2 s later, then less and less often, up to --max-backoff', async () => {
    const h = await startHarness({ maxBackoff: 5 });
    try {
      await webOnTwo(h);
      await h.streamSettled();
      h.marathon.failRest(500, 1000);
      const failed = () => h.metric('turbine_marathon_resyncs_total', { scope: 'full', result: 'error' });
      const before = await failed();
      void h.turbine.sync.requestResync();
      await new Promise((r) => setTimeout(r, 7500));
      // Retries at about 2 s and then 4 s (6 s in all); the old fixed 2 s made 3.
      assert.equal(await failed() - before, 3, 'the ask and two retries');
    } finally {
      h.marathon.failRest(500, 0);
      await h.close();
    }
  });

  it('app answers without their tasks (the embed parameter dropped) keep the backends served, and are counted as malformed', async () => {
    const h = await startHarness();
    try {
      const { a, b } = await webOnTwo(h);
      const malformed = await h.metric('turbine_marathon_malformed_total', { what: 'app' });
      h.marathon.omitTasks(true);
      await h.turbine.sync.requestResync();
      // A label edit makes it fetch the app alone too.
      h.marathon.emit('api_post_event', { appDefinition: { id: '/web' } });
      await until(async () => await h.metric('turbine_marathon_malformed_total', { what: 'app' }) >= malformed + 2, 'both answers counted');
      assert.deepEqual(h.turbine.table()!.services[0]!.backends.map((x) => x.port).sort(), [a.port, b.port].sort());
      h.marathon.omitTasks(false);
      killTaskOn(h, b);
      await h.waitTable((t) => t.services[0]?.backends.map((x) => x.port).join() === String(a.port), 'changes applied again');
    } finally {
      await h.close();
    }
  });

  it('an event for an app Turbine has not seen: the app is fetched and served', async () => {
    const h = await startHarness();
    try {
      const port = await freePort();
      const b = await h.httpBackend('surprise');
      h.marathon.putApp(httpApp('/surprise', port), [], { silent: true });
      h.marathon.startTask('/surprise', { host: b.host, ports: [b.port] });
      await until(async () => (await get(`http://127.0.0.1:${port}/`)).json().backend === 'surprise', 'the unseen app served');
    } finally {
      await h.close();
    }
  });

  it('a task killed while the stream was down is gone after the reconnect, though a full fetch begun before the kill was still in flight', async () => {
    const h = await startHarness();
    try {
      const { a, b } = await webOnTwo(h);
      await new Promise((r) => setTimeout(r, 300)); // the on-open resync done
      h.marathon.delayRest(800);
      const fetches = h.marathon.requests.apps;
      void h.turbine.sync.requestResync(); // SIGHUP: its snapshot is taken when Marathon gets it, with both tasks
      await until(() => h.marathon.requests.apps > fetches, 'the full fetch in flight');
      h.marathon.dropStreams();
      killTaskOn(h, b); // nobody hears it
      await until(() => h.marathon.streamCount() === 1, 'the stream back while the fetch is in flight');
      h.marathon.delayRest(0);
      await servedByAlone(h, a);
    } finally {
      await h.close();
    }
  });

  it('events for an app that arrive while it is refetched are not undone by the older answer', async () => {
    const h = await startHarness();
    try {
      const port = await freePort();
      const [a, b] = [await h.httpBackend('a'), await h.httpBackend('b')];
      h.marathon.putApp(httpApp('/web', port), [{ host: a.host, ports: [a.port] }]);
      await h.waitTable((t) => t.services[0]?.backends.length === 1, 'one backend');
      await until(() => h.turbine.sync.getStatus().state === 'connected', 'the event stream open');
      await new Promise((r) => setTimeout(r, 300)); // the on-open resync done
      h.marathon.delayRest(500);
      const before = h.marathon.requests.app;
      h.marathon.emit('api_post_event', { appDefinition: { id: '/web' } }); // a label edit: the app is refetched
      await until(() => h.marathon.requests.app > before, 'the refetch in flight');
      h.marathon.startTask('/web', { host: b.host, ports: [b.port] }); // TASK_RUNNING while the answer (without it) is on its way
      await h.waitTable((t) => t.services[0]?.backends.length === 2, 'the new task routed');
      await new Promise((r) => setTimeout(r, 1_000)); // the refetch answered meanwhile
      assert.equal(h.turbine.table()!.services[0]!.backends.length, 2, 'the new task still routed after the refetch answer');
    } finally {
      await h.close();
    }
  });

  for (const [how, end] of [
    ['TASK_KILLED alone (a Marathon without TASK_KILLING)', (m: FakeMarathon, id: string) => m.killTask(id, { events: 'killed-only' })],
    ['TASK_KILLING then TASK_KILLED (newer Marathon)', (m: FakeMarathon, id: string) => m.killTask(id, { events: 'killing-then-killed' })],
    ['TASK_FAILED alone (the task crashed)', (m: FakeMarathon, id: string) => m.endTask(id, 'TASK_FAILED')],
    ['TASK_GONE alone (its agent was removed)', (m: FakeMarathon, id: string) => m.endTask(id, 'TASK_GONE')],
  ] as const) {
    it(`${how}: the task gets no more requests`, async () => {
      const h = await startHarness();
      try {
        const port = await freePort();
        const [a, b] = [await h.httpBackend('a'), await h.httpBackend('b')];
        h.marathon.putApp(httpApp('/web', port), [{ host: a.host, ports: [a.port] }, { host: b.host, ports: [b.port] }]);
        await h.waitTable((t) => t.services[0]?.backends.length === 2, 'two');
        await until(() => h.turbine.sync.getStatus().state === 'connected', 'the event stream open');
        end(h.marathon, h.marathon.tasksOf('/web').find((t) => t.ports[0] === a.port)!.id);
        await h.waitTable((t) => t.services[0]!.backends.length === 1, 'the ended task out of the table');
        const before = a.hits();
        for (let i = 0; i < 10; i += 1) assert.equal((await get(`http://127.0.0.1:${port}/`)).json().backend, 'b');
        assert.equal(a.hits(), before);
      } finally {
        await h.close();
      }
    });
  }

  it('TASK_LOST alone: the task keeps its traffic, as marathon-lb does (the agent may come back)', async () => {
    const h = await startHarness();
    try {
      const port = await freePort();
      const a = await h.httpBackend('a');
      h.marathon.putApp(httpApp('/web', port), [{ host: a.host, ports: [a.port] }]);
      await h.waitTable((t) => t.services[0]?.backends.length === 1, 'one');
      await until(() => h.turbine.sync.getStatus().state === 'connected', 'the event stream open');
      const [task] = h.marathon.tasksOf('/web');
      h.marathon.endTask(task!.id, 'TASK_LOST');
      const marker = await h.httpBackend('marker');
      h.marathon.startTask('/web', { host: marker.host, ports: [marker.port] }); // an event after the lost one
      await h.waitTable((t) => t.services[0]!.backends.length === 2, 'the marker next to the lost task');
      assert.ok(h.turbine.table()!.services[0]!.backends.some((x) => x.taskId === task!.id));
    } finally {
      await h.close();
    }
  });

  it('a TASK_RUNNING after TASK_KILLED for the same task, with an older timestamp, does not bring it back', async () => {
    const h = await startHarness();
    try {
      const port = await freePort();
      const [a, b] = [await h.httpBackend('a'), await h.httpBackend('b')];
      h.marathon.putApp(httpApp('/web', port), [{ host: a.host, ports: [a.port] }, { host: b.host, ports: [b.port] }]);
      await h.waitTable((t) => t.services[0]?.backends.length === 2, 'two');
      const [victim] = h.marathon.tasksOf('/web');
      const killedAt = new Date();
      h.marathon.statusUpdate(victim!, 'TASK_KILLED', { timestamp: killedAt.toISOString() });
      await h.waitTable((t) => t.services[0]!.backends.length === 1, 'killed');
      h.marathon.statusUpdate(victim!, 'TASK_RUNNING', { timestamp: new Date(killedAt.getTime() - 1000).toISOString() });
      const marker = await h.httpBackend('marker');
      h.marathon.startTask('/web', { host: marker.host, ports: [marker.port] }); // an event after the stale one
      await h.waitTable((t) => t.services[0]!.backends.some((x) => x.address === `${marker.host}:${marker.port}`), 'the marker');
      assert.ok(!h.turbine.table()!.services[0]!.backends.some((x) => x.taskId === victim!.id));
      assert.equal(await h.metric('turbine_marathon_stale_events_total'), 1);
    } finally {
      await h.close();
    }
  });

  it('10,000 events in a burst are absorbed; the table ends right and the admin port stays responsive', async () => {
    const h = await startHarness();
    try {
      const ports = await Promise.all(Array.from({ length: 10 }, () => freePort()));
      ports.forEach((p, i) => h.marathon.putApp(app(`/burst-${i}`, p, { HAPROXY_GROUP: 'external' })));
      await h.waitTable((t) => t.appCount === 10, 'ten apps');
      let text = '';
      const at = Date.now();
      for (let n = 0; n < 10_000; n += 1) {
        const i = n % 10;
        const task = Math.floor(n / 10) % 500; // each task gets two events: RUNNING, then a duplicate
        text += `event: status_update_event\ndata: ${JSON.stringify({ eventType: 'status_update_event', appId: `/burst-${i}`, taskId: `burst-${i}.t${task}`,
          taskStatus: 'TASK_RUNNING', host: '10.9.0.1', ports: [30000 + task], timestamp: new Date(at + n).toISOString() })}\n\n`;
      }
      h.marathon.writeRaw(text);
      await h.waitTable((t) => t.services.reduce((sum, s) => sum + s.backends.length, 0) === 5000, '5,000 backends');
      assert.equal((await get(`${h.admin}/_haproxy_health_check`)).status, 200);
      await until(async () => await h.metric('turbine_marathon_events_total', { type: 'status_update_event' }) === 10_000, 'every event counted');
    } finally {
      await h.close();
    }
  });

  it('Marathon answering 401: the last table keeps serving and the health detail says why', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const h = await startHarness({}, m);
    try {
      const port = await freePort();
      const b = await h.httpBackend('kept');
      m.putApp(httpApp('/web', port), [{ host: b.host, ports: [b.port] }]);
      await until(async () => (await get(`http://127.0.0.1:${port}/`)).status === 200, 'served');
      m.failRest(401, 1000, '{"message":"Unauthorized"}');
      m.dropStreams();
      await until(async () => /auth: .*401/.test((await get(`${h.admin}/_haproxy_health_check`)).json<{ marathon: { lastError: string } }>().marathon.lastError ?? ''), 'the auth error reported');
      assert.equal((await get(`http://127.0.0.1:${port}/`)).json().backend, 'kept');
    } finally {
      await h.close();
    }
  });

  it('Marathon sending truncated JSON: skipped and retried; the next good answer is used', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const port = await freePort();
    m.failRest(200, 2, '{"apps": [{"id": "/web", "labels": {');
    const h = await startHarness({}, m);
    try {
      const b = await h.httpBackend('after-truncation');
      m.putApp(httpApp('/web', port), [{ host: b.host, ports: [b.port] }]);
      await until(async () => (await get(`http://127.0.0.1:${port}/`)).json().backend === 'after-truncation', 'served after the truncated answers', 10_000);
      assert.ok(await h.metric('turbine_marathon_resyncs_total', { scope: 'full', result: 'error' }) >= 1);
    } finally {
      await h.close();
    }
  });

  it('Marathon with basic auth: REST and the event stream authenticate, also across a non-leader redirect', async () => {
    const authorization = 'Basic ' + Buffer.from('ops:s3cret').toString('base64');
    const leader = new FakeMarathon({ authorization });
    await leader.listen();
    const follower = new FakeMarathon({ authorization });
    await follower.listen();
    follower.redirectEventsTo(leader.url);
    const h = await startHarness({ marathon: [follower.url], authCredentials: 'ops:s3cret' }, leader);
    try {
      const port = await freePort();
      const b = await h.httpBackend('authed');
      follower.putApp(httpApp('/web', port), [{ host: b.host, ports: [b.port] }]);
      await until(async () => (await get(`http://127.0.0.1:${port}/`)).json().backend === 'authed', 'served with credentials');
      await until(() => leader.streamCount() === 1, 'the event stream open on the leader, after the redirect');
    } finally {
      await h.close();
      await follower.close();
    }
  });
});
