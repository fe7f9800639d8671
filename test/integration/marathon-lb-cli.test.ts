// marathon-lb command lines start the real turbine command unchanged: the Docker image's
// `sse -m URL --group external`, several URLs after one -m, HAProxy-only flags, upper-case log
// levels, the DC/OS service-account login, and --longhelp.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { startHttpBackend } from '../../src/demo/backends.js';
import { FakeDcosLogin } from '../support/fake-dcos-login.js';
import { app } from '../support/harness.js';
import { freePort, get, until, untilServed } from '../support/net.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

/** Runs the command to its end (the fake Marathon answers from this process, so not spawnSync). */
async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c; });
  child.stderr.on('data', (c: Buffer) => { stderr += c; });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe('marathon-lb command lines', () => {
  it('a full marathon-lb command line with --dry: the first Marathon is down, the second answers; HAProxy flags are reported once', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const deadPort = await freePort();
    try {
      m.putApp(app('/web', 10100, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'web.example.com' }), [{ host: '10.0.0.1', ports: [31000] }]);
      const r = await run(['sse', '-m', `http://127.0.0.1:${deadPort}`, m.url, '--group', 'external', '--dry', '-H',
        '--log-level', 'DEBUG', '-c', 'sv reload haproxy', '--haproxy-config', '/marathon-lb/haproxy.cfg', '--archive-versions', '5',
        '--skip-config-cleanup', '--skip-validation', '--reload-interval', '10', '--max-reload-retries', '10', '--lru-cache-capacity', '1000',
        '--syslog-socket', '/dev/null', '--log-format', '%(asctime)-15s %(name)s: %(message)s', '--haproxy-map', '--group-https-by-vhost',
        '--min-serv-port-ip-per-task', '10050', '--max-serv-port-ip-per-task', '10100', '--max-backoff', '300', '-s']);
      assert.equal(r.code, 0, r.stderr);
      const table = JSON.parse(r.stdout);
      assert.deepEqual(table.services.map((s: { appId: string }) => s.appId), ['/web']);
      assert.deepEqual(table.services[0].backends.map((b: { address: string }) => b.address), ['10.0.0.1:31000']);
      const reported = r.stderr.trim().split('\n').map((line) => /^turbine: ([^:\s]+)/.exec(line)?.[1]);
      assert.deepEqual(reported.sort(), ['--archive-versions', '--command', '--haproxy-config', '--log-format', '--lru-cache-capacity',
        '--max-reload-retries', '--reload-interval', '--skip-config-cleanup', '--skip-validation', '--sse', '--syslog-socket'].sort());
      assert.match(r.stderr, /--command: no effect in Turbine \(Turbine runs no HAProxy/);
    } finally {
      await m.close();
    }
  });

  it('a Marathon URL with user:password@ logs in with them, as marathon-lb does, and never shows the password', async () => {
    const m = new FakeMarathon({ authorization: `Basic ${Buffer.from('ops:s3cret').toString('base64')}` });
    await m.listen();
    try {
      m.putApp(app('/web', 10100, { HAPROXY_GROUP: 'external' }), [{ host: '10.0.0.1', ports: [31000] }]);
      const r = await run(['-m', m.url.replace('http://', 'http://ops:s3cret@'), '--group', 'external', '--dry', '--log-level', 'debug']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout).services.map((s: { appId: string }) => s.appId), ['/web']);
      assert.doesNotMatch(r.stdout + r.stderr, /s3cret/);
    } finally {
      await m.close();
    }
  });

  it("the image's documented form `sse -m URL --group external` serves the app; poll is logged as not applicable", async () => {
    const m = new FakeMarathon();
    await m.listen();
    const backend = await startHttpBackend('web');
    const [port, admin, http, appid] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    m.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: backend.host, ports: [backend.port] }]);
    const child = spawn(process.execPath, [CLI, 'poll', '-m', m.url, '--group', 'external', '--bind', '127.0.0.1',
      '--admin-port', String(admin), '--http-port', String(http), '--appid-port', String(appid), '--log-level', 'WARNING']);
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c; });
    try {
      await untilServed(`http://127.0.0.1:${port}/`, 'the app on its service port', 10_000);
      assert.equal((await get(`http://127.0.0.1:${port}/`)).json().backend, 'web');
      const line = await until(() => stdout.split('\n').find((l) => l.includes('"flag":"poll"')), 'the poll warning');
      assert.match(JSON.parse(line).reason, /polling is not applicable/);
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
      await backend.stop();
      await m.close();
    }
  });

  it('DCOS_SERVICE_ACCOUNT_CREDENTIAL: Turbine logs in and reads Marathon with the token', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const login = new FakeDcosLogin(publicKey);
    const endpoint = await login.listen();
    const m = new FakeMarathon({ authorization: 'token=token-1' });
    await m.listen();
    try {
      m.putApp(app('/web', 10100, { HAPROXY_GROUP: 'external' }), [{ host: '10.0.0.1', ports: [31000] }]);
      const credential = JSON.stringify({ uid: 'turbine-svc', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), login_endpoint: endpoint });
      const r = await run(['sse', '-m', m.url, '--group', 'external', '--dry'], { DCOS_SERVICE_ACCOUNT_CREDENTIAL: credential });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).services[0].appId, '/web');
      assert.deepEqual(login.logins.map((l) => l.uid), ['turbine-svc']);
      const bad = await run(['-m', m.url, '--group', 'external', '--dry', '--dcos-auth-credentials', '{"uid":"x"}']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^turbine: --dcos-auth-credentials: "private_key" must be a PEM string/);
    } finally {
      await m.close();
      await login.close();
    }
  });

  it('--longhelp prints every label and flag with its status, and exits 0', () => {
    const r = spawnSync(process.execPath, [CLI, '--longhelp'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /HAPROXY_\{n\}_AUTH {2}\[applied\]/);
    assert.match(r.stdout, /HAPROXY_\{n\}_FRONTEND_HEAD {2}\[no effect\]\n {6}HAProxy template text/);
    assert.match(r.stdout, /--archive-versions {2}\[no effect\]/);
    assert.match(r.stdout, /--eject-seconds SECONDS\n/);
  });

  it('a marathon-lb value Turbine cannot honour still exits 2 naming the flag', () => {
    const r = spawnSync(process.execPath, [CLI, '-m', 'http://m:8080', '--group', 'x', '--min-serv-port-ip-per-task', '10200'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^turbine: --min-serv-port-ip-per-task: 10200 is above --max-serv-port-ip-per-task 10100\n$/);
  });
});
