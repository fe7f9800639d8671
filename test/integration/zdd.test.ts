// zdd.py against Turbine's admin port: the blue/green pair of marathon-lb's zdd_apps.json with real
// backends, read over HTTP the way zdd.py reads /haproxy?stats;csv. A request still running on
// the old colour's draining task keeps it from counting as drained; once it ends, zdd.py finds the
// task to kill. With workers, what is in flight is summed over them.
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { readFixture } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/harness.js';
import { freePort, get, until } from '../support/net.js';
import { appListeners, drainedTaskIdsLikeZdd, parseLikeZdd, type Listener } from '../support/zdd.js';

interface FixtureTask { id: string; host: string; ports: number[] }
interface FixtureApp { id: string; instances: number; labels: Record<string, string>; tasks: FixtureTask[]; [key: string]: unknown }

/** The port takes connections (with workers, the table is live before they have bound it). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** An HTTP backend that holds every request until released. */
async function holdingBackend() {
  const held: ServerResponse[] = [];
  const server = createServer((_req: IncomingMessage, res: ServerResponse) => { held.push(res); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    held: () => held.length,
    release() {
      for (const res of held.splice(0)) res.end('done');
    },
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

for (const workers of [1, 2]) {
  describe(`/haproxy?stats;csv for zdd.py (${workers} worker${workers > 1 ? 's' : ''})`, () => {
    let h: Harness;
    let hold: Awaited<ReturnType<typeof holdingBackend>>;
    let green: FixtureApp;
    let blue: FixtureApp;
    let port = 0;
    /** The old colour's task with the lowest id: the one drained first, so the held backend. */
    let drainsFirst = '';
    const pending: Promise<number>[] = [];

    // The agents are named by IP here: zdd.py's gethostbyname gives the name back.
    const drainedTaskIds = (ls: Listener[]) => drainedTaskIdsLikeZdd(green.tasks, ls, (host) => host);
    const listeners = async () => {
      const res = await get(`${h.admin}/haproxy?stats;csv`);
      assert.equal(res.status, 200);
      return appListeners(parseLikeZdd(res.text), `nginx_${port}`);
    };

    before(async () => {
      h = await startHarness({ activeHealthChecks: false, workers });
      hold = await holdingBackend();
      port = await freePort();
      const [raw0, raw1] = readFixture<{ apps: FixtureApp[] }>('marathon-lb', 'zdd_apps.json').apps;
      drainsFirst = [...raw0!.tasks].sort((a, b) => (a.id < b.id ? -1 : 1))[0]!.id;
      const where = async (t: FixtureTask) => ({ ...t, host: '127.0.0.1', ports: [t.id === drainsFirst ? hold.port : (await h.httpBackend(t.id)).port] });
      green = { ...raw0!, labels: { ...raw0!.labels, HAPROXY_0_PORT: String(port) }, tasks: await Promise.all(raw0!.tasks.map(where)) };
      blue = { ...raw1!, labels: { ...raw1!.labels, HAPROXY_0_PORT: String(port) }, tasks: await Promise.all(raw1!.tasks.map(where)) };
      const { tasks: greenTasks, ...greenApp } = green;
      h.marathon.putApp(greenApp, greenTasks);
      await h.waitTable((t) => t.services.some((s) => s.backends.length === 3), 'the old colour served');
      await until(() => accepts(port), 'the service port open');
    });
    after(async () => {
      hold.release();
      await Promise.allSettled(pending);
      await h.close();
      await hold.stop();
    });

    it('/_haproxy_getpids gives one pid whatever the workers, so zdd.py never takes Turbine for an HAProxy mid-reload', async () => {
      const res = await get(`${h.admin}/_haproxy_getpids`);
      assert.deepEqual(res.text.trim().split('\n'), [String(process.pid)]);
    });

    it('a request in flight on the draining old task shows in scur, so zdd.py waits; once it ends zdd.py finds the task to kill', async () => {
      // Requests go round the old colour until one is held on the task that will drain.
      await until(async () => {
        if (hold.held() > 0) return true;
        const started = new Promise<number>((resolve, reject) => {
          httpRequest({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)); })
            .on('error', reject).end();
        });
        pending.push(started);
        await Promise.race([started, new Promise((r) => setTimeout(r, 50))]);
        return hold.held() > 0;
      }, 'a request held on the old task');

      const { tasks: blueTasks, ...blueApp } = blue;
      h.marathon.putApp(blueApp, blueTasks);
      await h.waitTable((t) => t.services.some((s) => s.draining.length === 1), 'one old task draining');

      const during = await until(async () => {
        const ls = await listeners();
        return ls.some((l) => l.status === 'MAINT' && Number(l.scur) > 0) ? ls : null;
      }, 'scur > 0 on the draining task');
      // waiting_for_listeners: every instance of both colours is listed.
      assert.equal(during.length, green.instances + blue.instances);
      assert.equal(during.filter((l) => l.status === 'UP').length, 3);
      assert.deepEqual(drainedTaskIds(during), [], 'nothing drained while a request runs');

      hold.release();
      assert.ok((await Promise.all(pending)).every((status) => status === 200));
      const drained = await until(async () => {
        const ids = drainedTaskIds(await listeners());
        return ids.length > 0 ? ids : null;
      }, 'scur back to 0');
      assert.deepEqual(drained, [drainsFirst]);
    });

    it('answers the stats URI zdd.py and HAProxy users send: ;csv with options, ;up, and the HTML page without ;csv', async () => {
      const up = parseLikeZdd((await get(`${h.admin}/haproxy?stats;csv;norefresh;up`)).text).filter((l) => l.pxname === `nginx_${port}`);
      assert.ok(up.length > 0 && up.every((l) => l.status !== 'MAINT'), JSON.stringify(up));
      const page = await get(`${h.admin}/haproxy?stats`);
      assert.equal(page.status, 200);
      assert.match(String(page.headers['content-type']), /text\/html/);
      assert.equal((await get(`${h.admin}/haproxy?metrics`)).status, 404);
    });
  });
}
