// The turbine command as a user runs it: exit status 2 and one line naming the flag for bad input,
// --dry printing the routing table, SIGTERM draining and exiting 0.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { createServer, request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { startHttpBackend } from '../../src/demo/backends.js';
import { app } from '../support/harness.js';
import { startTurbineProcess } from '../support/cli.js';
import { freePort, get, until, untilServed } from '../support/net.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

/** A backend that answers 'finished' after `ms`. */
function slowBackend(ms: number): Promise<{ port: number; close: () => void }> {
  return new Promise((resolveSlow) => {
    const s = createServer((_req, res) => setTimeout(() => res.end('finished'), ms));
    s.listen(0, '127.0.0.1', () => resolveSlow({ port: (s.address() as AddressInfo).port, close: () => s.close() }));
  });
}

describe('turbine command line', () => {
  for (const [args, flag] of [
    [['--marathon', 'http://m:8080', '--group', 'external', '--http-port', 'eighty'], '--http-port'],
    [['--marathon', 'ftp://m', '--group', 'external'], '--marathon'],
    [['--marathon', 'http://m:8080'], '--group'],
    [['--marathon', 'http://m:8080', '--group', 'x', '--bogus'], '--bogus'],
    [['--marathon', 'https://m:8443', '--group', 'x', '--marathon-ca-cert', '/nonexistent/ca.pem'], '--marathon-ca-cert'],
    [['--marathon', 'http://m:8080', '--group', 'x', '--marathon-auth-credential-file', '/nonexistent/credentials'], '--marathon-auth-credential-file'],
    [['--marathon', 'http://m:8080', '--group', 'x', '--workers', '3', '--maxconn', '2'], '--maxconn'],
    [['--marathon', 'http://m:8080', '--group', 'x', '--workers', '3', '--maxconn-per-service', '2'], '--maxconn-per-service'],
  ] as const) {
    it(`${args.join(' ')} exits 2 naming ${flag}`, () => {
      const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 2);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1);
      assert.match(lines[0]!, new RegExp(`^turbine: ${flag}`));
    });
  }

  it('--help lists every flag with its environment variable', () => {
    const r = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--strict-mode .*TURBINE_STRICT_MODE/);
  });

  it('--dry prints the routing table as JSON and exits', async () => {
    const m = new FakeMarathon();
    await m.listen();
    try {
      const servicePort = await freePort();
      m.putApp(app('/web', servicePort, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'web.example.com' }), [{ host: '10.0.0.1', ports: [31000] }]);
      const child = spawn(process.execPath, [CLI, '--marathon', m.url, '--group', 'external', '--dry']);
      let out = '';
      child.stdout.on('data', (c: Buffer) => { out += c; });
      const code = await new Promise((r) => child.on('exit', r));
      assert.equal(code, 0);
      const table = JSON.parse(out);
      assert.equal(table.services[0].servicePort, servicePort);
      assert.deepEqual(table.services[0].backends.map((b: { address: string }) => b.address), ['10.0.0.1:31000']);
    } finally {
      await m.close();
    }
  });

  it('--dry authenticates with --marathon-auth-credential-file, as Turbine does', async () => {
    const m = new FakeMarathon({ authorization: 'Basic ' + Buffer.from('ops:s3cret').toString('base64') });
    await m.listen();
    const dir = mkdtempSync(join(tmpdir(), 'turbine-cred-'));
    writeFileSync(join(dir, 'cred'), 'ops:s3cret\n');
    try {
      m.putApp(app('/web', await freePort(), { HAPROXY_GROUP: 'external' }), [{ host: '10.0.0.1', ports: [31000] }]);
      // Not spawnSync: the fake Marathon answers from this process's event loop.
      const child = spawn(process.execPath, [CLI, '--marathon', m.url, '--group', 'external', '--dry',
        '--marathon-auth-credential-file', join(dir, 'cred')]);
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => { out += c; });
      child.stderr.on('data', (c: Buffer) => { err += c; });
      assert.equal(await new Promise((r) => child.on('exit', r)), 0, err);
      assert.equal(JSON.parse(out).services[0].appId, '/web');
    } finally {
      await m.close();
    }
  });

  it('--dry without --marathon exits 2', () => {
    const r = spawnSync(process.execPath, [CLI, '--dry'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^turbine: --dry: needs --marathon/);
  });

  it('`turbine demo` runs the demo: the sample apps are served, on the ports its flags give; SIGTERM stops it', async () => {
    const [http, admin] = [await freePort(), await freePort()];
    // A production state file in the environment: the demo's fake apps must never be saved into it.
    const stateFile = join(mkdtempSync(join(tmpdir(), 'turbine-demo-')), 'state.json');
    const child = spawn(process.execPath, [CLI, 'demo', '--http-port', String(http), '--admin-port', String(admin)], { env: { ...process.env, TURBINE_LOG_LEVEL: 'warn', TURBINE_STATE_FILE: stateFile } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c; });
    try {
      await until(() => stderr.includes('Ctrl-C stops everything'), 'the demo banner', 15_000);
      // The banner follows the first table; its listeners may still be opening.
      await untilServed('http://127.0.0.1:10000/hello', 'the demo web app on its service port', 10_000);
      assert.match((await get('http://127.0.0.1:10000/hello')).json().backend as string, /^web-/);
      assert.match((await get(`http://127.0.0.1:${http}/`, { host: 'web.example.com' })).json().backend as string, /^web-/);
      assert.equal((await get(`http://127.0.0.1:${admin}/_haproxy_health_check`)).status, 200);
      assert.match(stderr, new RegExp(`localhost:${http}/`), 'the banner names the port given');
      assert.equal(existsSync(stateFile), false, 'the state file was not written');
      await assert.rejects(get('http://127.0.0.1:10002/'), /ECONNREFUSED/);
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('SIGTERM while a long upload is in flight: the upload completes, then Turbine exits 0', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const backend = await startHttpBackend('sink');
    const [port, admin, http, appid] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    m.putApp(app('/sink', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: backend.host, ports: [backend.port] }]);
    const child = spawn(process.execPath, [CLI, '--marathon', m.url, '--group', 'external', '--bind', '127.0.0.1',
      '--admin-port', String(admin), '--http-port', String(http), '--appid-port', String(appid), '--log-level', 'warn']);
    try {
      await untilServed(`http://127.0.0.1:${port}/`, 'served', 10_000);
      const exited = new Promise((r) => child.on('exit', r));
      const chunk = 'u'.repeat(64 * 1024);
      const reply = await new Promise<string>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/upload', method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => { body += c; });
          res.on('end', () => resolve(body));
        });
        req.on('error', reject);
        void (async () => {
          for (let i = 0; i < 16; i += 1) {
            req.write(chunk);
            if (i === 3) child.kill('SIGTERM'); // a quarter of the way through
            await new Promise((r) => setTimeout(r, 50));
          }
          req.end();
        })();
      });
      assert.equal(JSON.parse(reply).bodyBytes, 16 * 64 * 1024);
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
      await backend.stop();
      await m.close();
    }
  });

  it('SIGHUP and SIGUSR1, sent to the process group too, refetch everything from Marathon and leave the workers and their requests alone; SIGUSR1 opens no inspector', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const slow = await slowBackend(1_000);
    const [port, inspector] = await Promise.all([freePort(), freePort()]);
    m.putApp(app('/slow', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [slow.port] }]);
    // Where Node's inspector would listen if SIGUSR1 opened it (its default signal action).
    const t = await startTurbineProcess(['--marathon', m.url, '--group', 'external', '--workers', '2'],
      { env: { ...process.env, NODE_OPTIONS: `--inspect-port=127.0.0.1:${inspector}` }, group: true });
    const group = -t.child.pid!;
    try {
      await untilServed(`${t.admin}/_haproxy_health_check`, 'ready', 10_000);
      await until(async () => { try { return (await get(`http://127.0.0.1:${port}/`)).status === 200; } catch { return false; } }, 'the service', 10_000);
      const inFlight = get(`http://127.0.0.1:${port}/`);
      await new Promise((r) => setTimeout(r, 100));
      for (const signal of ['SIGHUP', 'SIGUSR1'] as const) {
        const before = m.requests.apps;
        process.kill(group, signal);
        await until(() => m.requests.apps > before, `a full refetch after ${signal}`);
      }
      const res = await inFlight;
      assert.equal(res.status, 200, 'the request in flight at the signals is answered');
      assert.equal(t.child.exitCode, null, 'still running');
      const refused = await new Promise<boolean>((resolve) => {
        const probe = connect(inspector, '127.0.0.1', () => { probe.destroy(); resolve(false); });
        probe.on('error', () => resolve(true));
      });
      assert.equal(refused, true, 'nothing listens where the inspector would');
    } finally {
      try { process.kill(group, 'SIGKILL'); } catch { /* gone */ }
      slow.close();
      await m.close();
    }
  });

  it('SIGTERM while it is still starting (its workers forking) exits 0', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const t = await startTurbineProcess(['--marathon', m.url, '--group', 'external', '--workers', '2', '--shutdown-grace', '0']);
    try {
      // The admin listener answers before the workers are up: signal at its first answer.
      await until(async () => { try { await get(`${t.admin}/_haproxy_health_check`); return true; } catch { return false; } }, 'the admin listener', 10_000);
      t.child.kill('SIGTERM');
      assert.equal(await t.exited, 0, t.stderr());
    } finally {
      t.child.kill('SIGKILL');
      await m.close();
    }
  });

  it('SIGTERM: health turns 503, the in-flight request completes, exit 0', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const slow = await slowBackend(700);
    const [port, admin, http, appid] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    m.putApp(app('/slow', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [slow.port] }]);
    const child = spawn(process.execPath, [CLI, '--marathon', m.url, '--group', 'external', '--bind', '127.0.0.1',
      '--admin-port', String(admin), '--http-port', String(http), '--appid-port', String(appid), '--log-level', 'warn']);
    try {
      await until(async () => (await get(`http://127.0.0.1:${admin}/_haproxy_health_check`)).status === 200, 'ready', 10_000);
      await until(async () => { try { await get(`http://127.0.0.1:${port}/`); return true; } catch { return false; } }, 'listener', 10_000);
      const inFlight = get(`http://127.0.0.1:${port}/upload`);
      await new Promise((r) => setTimeout(r, 100));
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await until(async () => (await get(`http://127.0.0.1:${admin}/_haproxy_health_check`)).status === 503, 'health 503 while draining');
      const res = await inFlight;
      assert.equal(res.text, 'finished');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
      slow.close();
      await m.close();
    }
  });

});
