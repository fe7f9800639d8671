// The turbine command on a production host: no silent demo, clear errors, and a shutdown grace
// period that keeps serving while the health check already says 503.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { startHttpBackend } from '../../src/demo/backends.js';
import { app } from '../support/harness.js';
import { freePort, get, until, untilServed } from '../support/net.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

describe('turbine on a production host', () => {
  it('without --marathon it exits 2 naming --marathon, and serves nothing (no demo)', async () => {
    const [http, admin] = await Promise.all([freePort(), freePort()]);
    const r = spawnSync(process.execPath, [CLI, '--group', 'external', '--bind', '127.0.0.1', '--http-port', String(http), '--admin-port', String(admin)],
      { encoding: 'utf8', timeout: 10_000, env: { ...process.env, TURBINE_MARATHON: undefined } });
    assert.equal(r.status, 2);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^turbine: --marathon: required/);
    assert.match(lines[0]!, /turbine demo/);
  });

  it('--admin-port -1 is an invalid value, not a missing one', () => {
    const r = spawnSync(process.execPath, [CLI, '--marathon', 'http://m:8080', '--group', 'x', '--admin-port', '-1'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^turbine: --admin-port \(flag\): expected a port number 0-65535, got "-1"/);
  });

  it('SIGTERM with --shutdown-grace: health 503 at once, new connections still served during the grace, then exit 0', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const backend = await startHttpBackend('graceful');
    const [port, admin, http, appid] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    m.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: backend.host, ports: [backend.port] }]);
    const child = spawn(process.execPath, [CLI, '--marathon', m.url, '--group', 'external', '--bind', '127.0.0.1', '--workers', '1',
      '--admin-port', String(admin), '--http-port', String(http), '--appid-port', String(appid), '--shutdown-grace', '3', '--access-log']);
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c; });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    let gone = false;
    void exited.then(() => { gone = true; });
    try {
      await untilServed(`http://127.0.0.1:${port}/`, 'served', 10_000);
      child.kill('SIGTERM');
      await until(async () => (await get(`http://127.0.0.1:${admin}/_haproxy_health_check`)).status === 503, 'health 503 after SIGTERM');
      const health = (await get(`http://127.0.0.1:${admin}/_haproxy_health_check`)).json();
      assert.equal(health.status, 'draining');
      // A fresh connection (no keep-alive) after the 503: still accepted and forwarded.
      const served = await fetch(`http://127.0.0.1:${port}/during-grace`, { headers: { connection: 'close' } });
      assert.equal(served.status, 200);
      assert.equal(((await served.json()) as { backend: string }).backend, 'graceful');
      assert.equal(gone, false, 'still running while the grace period lasts');
      assert.equal(await exited, 0);
      await assert.rejects(fetch(`http://127.0.0.1:${port}/after`), 'nothing accepts after the drain');
      // Log lines: one "service" key each (the routing service), the program in "name".
      const lines = stdout.trim().split('\n');
      assert.ok(lines.some((l) => l.includes('"name":"turbine"')));
      const access = lines.filter((l) => l.includes('/during-grace'));
      assert.equal(access.length, 1, stdout);
      assert.equal(access[0]!.split('"service":').length, 2, access[0]);
      assert.equal(JSON.parse(access[0]!).service, '/web:0');
    } finally {
      child.kill('SIGKILL');
      await backend.stop();
      await m.close();
    }
  });
});
