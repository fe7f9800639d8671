// --workers 2: one process talks to Marathon, two serve traffic; counters are summed; a worker that
// dies is replaced while the others keep serving.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { startHttpBackend, type RunningBackend } from '../../src/demo/backends.js';
import { startTurbineProcess } from '../support/cli.js';
import { app } from '../support/harness.js';
import { freePort, get, settled, sumMetric, until, untilServed, within } from '../support/net.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

/** The primary's pid (all /_haproxy_getpids gives, as zdd.py expects), then the workers' from /stats. */
async function pidsOf(admin: string): Promise<number[]> {
  return [Number((await get(`${admin}/_haproxy_getpids`)).text.trim()), ...(JSON.parse((await get(`${admin}/stats`)).text) as { workers: number[] }).workers];
}

/** Runs `work` while every other worker is stopped (SIGSTOP): only `pid` can accept a connection. */
async function onlyWorker(admin: string, pid: number, work: () => Promise<void>): Promise<void> {
  const others = (await pidsOf(admin)).slice(1).filter((p) => p !== pid);
  for (const p of others) process.kill(p, 'SIGSTOP');
  try {
    await work();
  } finally {
    for (const p of others) process.kill(p, 'SIGCONT');
  }
}

describe('--workers 2', () => {
  const m = new FakeMarathon();
  const backends: RunningBackend[] = [];
  let child: ChildProcess;
  let admin: string;
  let port: number;

  const pids = () => pidsOf(admin);
  const metric = async (name: string, labels: Record<string, string> = {}) => sumMetric((await get(`${admin}/metrics`)).text, name, labels);

  before(async () => {
    await m.listen();
    port = await freePort();
    const [a, b] = [await startHttpBackend('a'), await startHttpBackend('b')];
    backends.push(a, b);
    m.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: a.host, ports: [a.port] }, { host: b.host, ports: [b.port] }]);
    const [adminPort, http, appid] = await Promise.all([freePort(), freePort(), freePort()]);
    admin = `http://127.0.0.1:${adminPort}`;
    child = spawn(process.execPath, [CLI, '--marathon', m.url, '--group', 'external', '--bind', '127.0.0.1', '--workers', '2',
      '--admin-port', String(adminPort), '--http-port', String(http), '--appid-port', String(appid), '--log-level', 'warn'], { stdio: 'ignore' });
    // Connection: close: a kept-alive socket to a worker the tests stop later would hang.
    await untilServed(`http://127.0.0.1:${port}/`, 'served', 15_000, { connection: 'close' });
  });
  after(async () => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await m.close();
    await Promise.all(backends.map((b) => b.stop()));
  });

  it('runs a primary and two workers, and only the primary talks to Marathon (one event stream)', async () => {
    const all = await pids();
    assert.equal(all.length, 3);
    assert.equal(all[0], child.pid);
    assert.equal(m.streamCount(), 1);
    assert.equal(m.requests.events, 1);
  });

  it('each of the two workers serves requests on its own', async () => {
    for (const pid of (await pids()).slice(1)) {
      await onlyWorker(admin, pid, async () => {
        for (let i = 0; i < 5; i += 1) {
          const res = await within(5000, get(`http://127.0.0.1:${port}/`, { connection: 'close' }), `worker ${pid} alone`);
          assert.equal(res.status, 200);
        }
      });
    }
  });

  it('counters from both workers are summed in /metrics, each request once', async () => {
    // A service nothing else touches, so the count is exact: no double counting, nothing lost.
    const countPort = await freePort();
    m.putApp(app('/count', countPort, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: backends[0]!.host, ports: [backends[0]!.port] }]);
    await untilServed(`http://127.0.0.1:${countPort}/`, 'the counting service', 5000, { connection: 'close' });
    // Twenty requests served by each worker alone, so the total needs both workers' counters.
    for (const pid of (await pids()).slice(1)) {
      await onlyWorker(admin, pid, async () => {
        for (let i = 0; i < 20; i += 1) await within(5000, get(`http://127.0.0.1:${countPort}/`, { connection: 'close' }), `worker ${pid} alone`);
      });
    }
    await until(async () => (await metric('turbine_requests_total', { service: '/count:0' })) === 41, 'forty-one requests counted');
    await new Promise((r) => setTimeout(r, 1100)); // two more report rounds: still exactly 41
    assert.equal(await metric('turbine_requests_total', { service: '/count:0' }), 41);
  });

  it('a new task reaches the workers', async () => {
    const c = await startHttpBackend('c');
    backends.push(c);
    m.startTask('/web', { host: c.host, ports: [c.port] });
    await until(async () => (await get(`http://127.0.0.1:${port}/`, { connection: 'close' })).json().backend === 'c', 'the new task served');
  });

  it('a worker killed is replaced; the service answers throughout and totals do not go backwards', async () => {
    const [, victim, survivor] = await pids();
    const total = await metric('turbine_requests_total');
    process.kill(victim!, 'SIGKILL');
    let failures = 0;
    for (let i = 0; i < 50; i += 1) {
      const res = await get(`http://127.0.0.1:${port}/`, { connection: 'close' }).catch(() => null);
      if (res?.status !== 200) failures += 1;
    }
    assert.equal(failures, 0, 'new connections after the kill are served by the live worker');
    await until(async () => { const now = await pids(); return now.length === 3 && !now.includes(victim!) && now.includes(survivor!); }, 'a replacement worker');
    await until(async () => (await metric('turbine_requests_total')) >= total + 50, 'totals kept and growing');
    assert.equal(await metric('turbine_worker_restarts_total'), 1);
    // Its replacement dies young too: the next one waits half a second (a worker that keeps dying is not forked in a tight loop).
    const replacement = (await pids()).find((p, i) => i > 0 && p !== survivor)!;
    const killedAt = Date.now();
    process.kill(replacement, 'SIGKILL');
    await until(async () => { const now = await pids(); return now.length === 3 && !now.includes(replacement); }, 'a second replacement');
    assert.ok(Date.now() - killedAt >= 450, `replaced ${Date.now() - killedAt} ms after the second death in its slot`);
    assert.equal(await metric('turbine_worker_restarts_total'), 2);
  });

  it("what a killed worker counted leaves /metrics with its service, as a live worker's counters do", async () => {
    // The /count service was counted by the worker the last test killed (its counters are kept so totals do not go backwards).
    m.removeApp('/count');
    await until(async () => !(await get(`${admin}/metrics`)).text.includes('service="/count:0"'), 'no /count:0 series left', 5000);
  });

  it('what a killed worker counted for a backend that left stays as long as the live workers keep theirs (--metrics-retention): the counter never goes down', async () => {
    const keepPort = await freePort();
    const [x, y] = backends as [RunningBackend, RunningBackend];
    m.putApp(app('/keep', keepPort, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: x.host, ports: [x.port] }]);
    await untilServed(`http://127.0.0.1:${keepPort}/`, 'the service', 5000, { connection: 'close' });
    const served = { service: '/keep:0', backend: `${x.host}:${x.port}` };
    // The requests that found the service served are reported within half a second.
    const before = await settled(() => metric('turbine_requests_total', served), 'the count settled', 600);
    const [, victim] = await pids();
    for (const pid of (await pids()).slice(1)) {
      await onlyWorker(admin, pid, async () => {
        for (let i = 0; i < 10; i += 1) await within(5000, get(`http://127.0.0.1:${keepPort}/`, { connection: 'close' }), `worker ${pid} alone`);
      });
    }
    await until(async () => (await metric('turbine_requests_total', served)) === before + 20, 'both workers\' counts reported');
    process.kill(victim!, 'SIGKILL');
    await until(async () => { const now = await pids(); return now.length === 3 && !now.includes(victim!); }, 'a replacement worker');
    m.startTask('/keep', { host: y.host, ports: [y.port] });
    m.killTask(m.tasksOf('/keep').find((t) => t.ports[0] === x.port)!.id);
    const keepBackends = async () => (await get(`${admin}/routes`)).json<{ services: { id: string; backends: { address: string }[] }[] }>()
      .services.find((sv) => sv.id === served.service)?.backends.map((bk) => bk.address);
    await until(async () => (await keepBackends())?.join() === `${y.host}:${y.port}`, 'the backend gone from the table');
    for (let i = 0; i < 3; i += 1) {
      assert.equal(await metric('turbine_requests_total', served), before + 20, 'the series of the backend that left keeps its count');
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  it('an active health check failing in the primary takes the backend out in every worker', async () => {
    let healthy = true;
    const checked = createServer((req, res) => {
      if (req.url === '/health') res.writeHead(healthy ? 200 : 500).end();
      else res.end(JSON.stringify({ backend: 'checked' }));
    });
    await new Promise<void>((r) => checked.listen(0, '127.0.0.1', r));
    const checkedPort = (checked.address() as AddressInfo).port;
    const other = backends[0]!;
    const hcPort = await freePort();
    // No grace period: the task fails before its first check passes, which a grace period would forgive.
    m.putApp(app('/hc', hcPort, { HAPROXY_GROUP: 'external' }, {
      healthChecks: [{ protocol: 'HTTP', path: '/health', portIndex: 0, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 1, gracePeriodSeconds: 0 }],
    }), [{ host: '127.0.0.1', ports: [checkedPort], alive: true }, { host: other.host, ports: [other.port], alive: true }]);
    try {
      const seen = async () => {
        const names = new Set<string>();
        for (let i = 0; i < 20; i += 1) names.add((await get(`http://127.0.0.1:${hcPort}/`, { connection: 'close' })).json().backend as string);
        return names;
      };
      await until(async () => (await seen()).has('checked'), 'the checked backend serving', 10_000);
      healthy = false;
      await until(async () => !(await seen()).has('checked'), 'no worker sending to it', 10_000);
      assert.deepEqual([...(await seen())], [other.name], 'twenty new connections, across both workers, all elsewhere');
      healthy = true;
      await until(async () => (await seen()).has('checked'), 'back in every worker', 10_000);
    } finally {
      checked.closeAllConnections();
      checked.close();
    }
  });
});

describe('--workers 2 --metrics-retention 2', () => {
  it('a backend that left keeps its summed count until every worker has let it go, then leaves at once: the counter never goes down', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const [x, y] = [await startHttpBackend('x'), await startHttpBackend('y')];
    const port = await freePort();
    m.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: x.host, ports: [x.port] }]);
    const { child, admin, exited } = await startTurbineProcess(['--marathon', m.url, '--group', 'external', '--workers', '2', '--metrics-retention', '2']);
    const left = { backend: `${x.host}:${x.port}` };
    const count = async () => sumMetric((await get(`${admin}/metrics`)).text, 'turbine_requests_total', left);
    try {
      await untilServed(`http://127.0.0.1:${port}/`, 'served', 15_000, { connection: 'close' });
      for (const pid of (await pidsOf(admin)).slice(1)) {
        await onlyWorker(admin, pid, async () => {
          for (let i = 0; i < 10; i += 1) await within(5000, get(`http://127.0.0.1:${port}/`, { connection: 'close' }), `worker ${pid} alone`);
        });
      }
      const counted = await settled(count, 'both workers reported', 600);
      assert.ok(counted >= 20);
      m.startTask('/web', { host: y.host, ports: [y.port] });
      m.killTask(m.tasksOf('/web').find((t) => t.ports[0] === x.port)!.id);
      const routed = async () => (await get(`${admin}/routes`)).json<{ services: { backends: { address: string }[] }[] }>().services[0]?.backends.map((b) => b.address).join();
      await until(async () => (await routed()) === `${y.host}:${y.port}`, 'the backend gone from the table');
      await new Promise((r) => setTimeout(r, 300)); // the table reached both workers
      // Each worker lets it go on its own sweep (retention, and up to a quarter more). One stopped
      // past that lets the other drop it first, as sweeps and reports out of step do.
      const [, late] = await pidsOf(admin);
      const seen: number[] = [];
      const watch = async (ms: number) => {
        for (const deadline = Date.now() + ms; Date.now() < deadline;) {
          const text = (await get(`${admin}/metrics`)).text;
          if (!text.includes(`backend="${left.backend}"`)) return;
          seen.push(sumMetric(text, 'turbine_requests_total', left));
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      process.kill(late!, 'SIGSTOP');
      try {
        await watch(3_500);
      } finally {
        process.kill(late!, 'SIGCONT');
      }
      await watch(3_000);
      assert.ok(!(await get(`${admin}/metrics`)).text.includes(`backend="${left.backend}"`), 'the series is gone after the retention');
      assert.deepEqual([...new Set(seen)], [counted], 'the count held until the series left');
    } finally {
      child.kill('SIGTERM');
      await exited;
      await m.close();
      await Promise.all([x.stop(), y.stop()]);
    }
  });
});

describe('--workers 2: the connection limits are totals', () => {
  it('the workers\' shares add up to --maxconn: 2 and 1, not 2 each', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const backend = await startHttpBackend('a');
    const port = await freePort();
    m.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: backend.host, ports: [backend.port] }]);
    const { child, admin, exited } = await startTurbineProcess(['--marathon', m.url, '--group', 'external', '--workers', '2', '--maxconn', '3']);
    /** Opens a connection and asks once; it stays open. The status line's code (503: over the worker's share). */
    const ask = (held: Socket[]) => new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: w\r\n\r\n'));
      held.push(s);
      s.once('data', (d: Buffer) => resolve(d.toString('latin1').slice(9, 12)));
      s.on('error', reject);
    });
    try {
      await untilServed(`http://127.0.0.1:${port}/`, 'served', 15_000, { connection: 'close' });
      const admitted: number[] = [];
      for (const pid of (await pidsOf(admin)).slice(1)) {
        await onlyWorker(admin, pid, async () => {
          const held: Socket[] = [];
          const codes: string[] = [];
          for (let i = 0; i < 4; i += 1) codes.push(await within(5000, ask(held), `connection ${i + 1} to worker ${pid}`));
          admitted.push(codes.filter((c) => c === '200').length);
          assert.deepEqual(codes.filter((c) => c !== '200').map(() => '503'), codes.filter((c) => c !== '200'));
          for (const s of held) s.destroy();
          // Its slots are free again once it has seen the closes.
          await new Promise((r) => setTimeout(r, 200));
        });
      }
      assert.deepEqual(admitted.sort(), [1, 2]);
    } finally {
      child.kill('SIGTERM');
      await exited;
      await m.close();
      await backend.stop();
    }
  });

  it('--maxconn-per-service 3 is a total too: the workers admit 2 and 1 requests in flight, not 3 each', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const slow = createServer((_req, res) => setTimeout(() => res.end('slow'), 500));
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const port = await freePort();
    m.putApp(app('/slow', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [(slow.address() as AddressInfo).port] }]);
    const { child, admin, exited } = await startTurbineProcess(['--marathon', m.url, '--group', 'external', '--workers', '2', '--maxconn-per-service', '3']);
    try {
      await untilServed(`http://127.0.0.1:${port}/`, 'served', 15_000, { connection: 'close' });
      const admitted: number[] = [];
      for (const pid of (await pidsOf(admin)).slice(1)) {
        await onlyWorker(admin, pid, async () => {
          const answers = await within(5000, Promise.all(Array.from({ length: 4 }, () => get(`http://127.0.0.1:${port}/`, { connection: 'close' }))), `worker ${pid} alone`);
          admitted.push(answers.filter((r) => r.status === 200).length);
          assert.deepEqual(answers.filter((r) => r.status !== 200).map((r) => r.status), Array(4 - admitted.at(-1)!).fill(503));
        });
      }
      assert.deepEqual(admitted.sort(), [1, 2]);
    } finally {
      child.kill('SIGTERM');
      await exited;
      slow.close();
      await m.close();
    }
  });
});
