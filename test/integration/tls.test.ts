// HAPROXY_{n}_SSL_CERT and HAPROXY_{n}_BIND_OPTIONS: a service port terminates TLS with the app's
// certificate; the HTTPS listener picks it by SNI for the app's virtual hosts; certificates reload
// when their files change; a certificate that cannot be loaded closes only its own port.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { startHttpBackend } from '../../src/demo/backends.js';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, get, sumMetric, until, untilServed } from '../support/net.js';
import { fixtureCert, fixtureCertText, httpsGet, tlsRoundTrip } from '../support/tls.js';

interface RouteWarning { appId: string; label: string; reason: string; kind?: string }

async function routeWarnings(h: Harness): Promise<RouteWarning[]> {
  return (await get(`${h.admin}/routes`)).json<{ warnings: RouteWarning[] }>().warnings;
}

async function refused(work: Promise<unknown>): Promise<boolean> {
  try {
    await work;
    return false;
  } catch {
    return true;
  }
}

describe('TLS on service ports (HAPROXY_{n}_SSL_CERT)', () => {
  it('an http-mode port serves HTTP over TLS with the certificate, telling the backend https; plain HTTP is not served there', async () => {
    const h = await startHarness();
    try {
      const b = await h.httpBackend('secure');
      const port = await freePort();
      h.marathon.putApp(app('/secure', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_0_SSL_CERT: fixtureCert('a') }), [{ host: b.host, ports: [b.port] }]);
      const res = await until(() => httpsGet(port, 'secure.example.com'), 'the TLS port');
      assert.equal(res.status, 200);
      assert.equal(res.peer, 'a.example.com');
      const seen = JSON.parse(res.body) as { backend: string; headers: Record<string, string> };
      assert.equal(seen.backend, 'secure');
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      assert.ok(await refused(get(`http://127.0.0.1:${port}/`)), 'a plain HTTP request gets no answer');
      assert.deepEqual((await routeWarnings(h)).filter((w) => w.appId === '/secure'), [], 'the label is applied, not reported');
    } finally {
      await h.close();
    }
  });

  it('a tcp-mode port terminates TLS and forwards the decrypted bytes', async () => {
    const h = await startHarness();
    try {
      const b = await h.tcpBackend('echo');
      const port = await freePort();
      h.marathon.putApp(app('/db', port, { HAPROXY_GROUP: 'external', HAPROXY_0_SSL_CERT: fixtureCert('b') }), [{ host: b.host, ports: [b.port] }]);
      const res = await until(() => tlsRoundTrip(port, 'ping'), 'the TLS port');
      assert.equal(res.peer, 'b.example.com');
      assert.equal(res.text, 'echo:ping');
    } finally {
      await h.close();
    }
  });

  it('a certificate that cannot be read closes its port only: /routes, the log and a metric say why, the health check stays 200', async () => {
    const h = await startHarness();
    try {
      const b = await h.httpBackend('web');
      const [bad, good] = [await freePort(), await freePort()];
      const missing = join(mkdtempSync(join(tmpdir(), 'turbine-tls-')), 'missing.pem');
      h.marathon.putApp(app('/bad', bad, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_0_SSL_CERT: missing }), [{ host: b.host, ports: [b.port] }]);
      h.marathon.putApp(app('/good', good, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      await untilServed(`http://127.0.0.1:${good}/`, 'the other app');
      const warning = await until(async () => (await routeWarnings(h)).find((w) => w.appId === '/bad'), 'the warning in /routes');
      assert.equal(warning.label, 'HAPROXY_0_SSL_CERT');
      assert.match(warning.reason, /cannot read .*missing\.pem: ENOENT: port 127\.0\.0\.1:\d+ not served/);
      assert.ok(await refused(tlsRoundTrip(bad, '')), 'not served over TLS');
      assert.ok(await refused(get(`http://127.0.0.1:${bad}/`)), 'nor in clear');
      assert.equal(await h.metric('turbine_tls_certificate_errors_total', { certificate: missing, reason: 'unreadable' }), 1);
      assert.equal((await get(`${h.admin}/_haproxy_health_check`)).status, 200);

      // The file appears: the port opens without a change in Marathon.
      copyFileSync(fixtureCert('a'), missing);
      const res = await until(async () => (await refused(httpsGet(bad, 'x'))) ? null : httpsGet(bad, 'x'), 'the port once its certificate exists');
      assert.equal(res.peer, 'a.example.com');
      await until(async () => !(await routeWarnings(h)).some((w) => w.appId === '/bad'), 'the warning gone');
    } finally {
      await h.close();
    }
  });

  it('a rewritten certificate file is served to new connections; one that turns invalid keeps the last good one', async () => {
    const h = await startHarness();
    try {
      const b = await h.tcpBackend('echo');
      const port = await freePort();
      const file = join(mkdtempSync(join(tmpdir(), 'turbine-tls-')), 'cert.pem');
      copyFileSync(fixtureCert('a'), file);
      h.marathon.putApp(app('/db', port, { HAPROXY_GROUP: 'external', HAPROXY_0_SSL_CERT: file }), [{ host: b.host, ports: [b.port] }]);
      assert.equal((await until(() => tlsRoundTrip(port, ''), 'the TLS port')).peer, 'a.example.com');
      writeFileSync(file, fixtureCertText('b'));
      await until(async () => (await tlsRoundTrip(port, '')).peer === 'b.example.com', 'the renewed certificate');
      writeFileSync(file, 'not a certificate\n');
      await until(async () => (await h.metric('turbine_tls_certificate_errors_total', { certificate: file, reason: 'invalid' })) === 1, 'the failed reload counted');
      assert.equal((await tlsRoundTrip(port, 'still')).peer, 'b.example.com');
      assert.equal((await tlsRoundTrip(port, 'still')).text, 'echo:still');
    } finally {
      await h.close();
    }
  });
});

describe('TLS labels edited on a running app', () => {
  it('adding SSL_CERT to a plain port turns it to TLS, and removing it turns it back, without other changes', async () => {
    const h = await startHarness();
    try {
      const b = await h.httpBackend('web');
      const port = await freePort();
      const define = (labels: Record<string, string>) => h.marathon.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', ...labels }), [{ host: b.host, ports: [b.port] }]);
      define({});
      await untilServed(`http://127.0.0.1:${port}/`, 'the plain port');
      define({ HAPROXY_0_SSL_CERT: fixtureCert('a') });
      assert.equal((await until(() => httpsGet(port, 'web.example.com'), 'the port over TLS')).peer, 'a.example.com');
      define({});
      await untilServed(`http://127.0.0.1:${port}/`, 'the plain port again');
    } finally {
      await h.close();
    }
  });
});

describe('HAPROXY_{n}_BIND_OPTIONS on a TLS port', () => {
  it('strict-sni: only a client naming a host of the certificate completes the handshake; one naming none or another gets an alert, and no certificate', async () => {
    const h = await startHarness();
    try {
      const b = await h.tcpBackend('echo');
      const port = await freePort();
      h.marathon.putApp(app('/sni', port, { HAPROXY_GROUP: 'external', HAPROXY_0_SSL_CERT: fixtureCert('a'), HAPROXY_0_BIND_OPTIONS: 'strict-sni' }), [{ host: b.host, ports: [b.port] }]);
      const named = await until(() => tlsRoundTrip(port, 'x', { servername: 'a.example.com' }), 'the TLS port');
      assert.equal(named.peer, 'a.example.com');
      assert.equal(named.text, 'echo:x');
      for (const options of [{}, { servername: 'other.example.com' }]) {
        const failure = await tlsRoundTrip(port, 'x', options).then(() => null, (err: NodeJS.ErrnoException) => err);
        assert.ok(failure !== null, `${options.servername ?? 'no SNI'}: refused`);
        // An alert from the handshake (OpenSSL's ERR_SSL_..._ALERT_...), not a connection cut after it.
        assert.match(failure.code ?? failure.message, /ALERT/, `${options.servername ?? 'no SNI'}: ${failure.message}`);
      }
    } finally {
      await h.close();
    }
  });

  it('applies ssl-min-ver, reports keywords it does not apply, and refuses client-certificate verification (fail closed)', async () => {
    const h = await startHarness();
    try {
      const b = await h.tcpBackend('echo');
      const [strict, verify] = [await freePort(), await freePort()];
      h.marathon.putApp(app('/strict', strict, { HAPROXY_GROUP: 'external', HAPROXY_0_SSL_CERT: fixtureCert('a'), HAPROXY_0_BIND_OPTIONS: 'ssl-min-ver TLSv1.3 accept-proxy' }), [{ host: b.host, ports: [b.port] }]);
      h.marathon.putApp(app('/verify', verify, { HAPROXY_GROUP: 'external', HAPROXY_0_SSL_CERT: fixtureCert('a'), HAPROXY_0_BIND_OPTIONS: 'verify required ca-file /etc/ssl/ca.pem' }), [{ host: b.host, ports: [b.port] }]);
      assert.equal((await until(() => tlsRoundTrip(strict, 'x'), 'the TLS port')).text, 'echo:x');
      assert.ok(await refused(tlsRoundTrip(strict, 'x', { maxVersion: 'TLSv1.2' })), 'a TLS 1.2 client is refused');
      const warnings = await routeWarnings(h);
      assert.deepEqual(warnings.filter((w) => w.appId === '/strict').map((w) => [w.label, w.kind, w.reason]),
        [['HAPROXY_0_BIND_OPTIONS', 'not-applied', 'HAProxy bind keywords Turbine does not apply: accept-proxy']]);
      const verifyWarnings = warnings.filter((w) => w.appId === '/verify');
      assert.equal(verifyWarnings.length, 2);
      assert.match(verifyWarnings.find((w) => w.kind !== 'not-applied')!.reason, /^verify required: client certificates are not checked by Turbine: the service port is not served/);
      assert.ok(await refused(tlsRoundTrip(verify, 'x')), 'the port that asks for client certificates is not served');
    } finally {
      await h.close();
    }
  });
});

describe('per-vhost certificates on the HTTPS listener', () => {
  it('opens for an app certificate without --ssl-certs: SNI picks the app certificate, other names are refused', async () => {
    const httpsPort = await freePort();
    const h = await startHarness({ httpsPort });
    try {
      const b = await h.httpBackend('shop');
      h.marathon.putApp(app('/shop', await freePort(), { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'shop.example.com', HAPROXY_0_SSL_CERT: fixtureCert('a') }), [{ host: b.host, ports: [b.port] }]);
      const res = await until(() => httpsGet(httpsPort, 'shop.example.com', { servername: 'shop.example.com' }), 'the HTTPS listener');
      assert.equal(res.status, 200);
      assert.equal(res.peer, 'a.example.com');
      assert.equal((JSON.parse(res.body) as { headers: Record<string, string> }).headers['x-forwarded-proto'], 'https');
      assert.ok(await refused(httpsGet(httpsPort, 'other.example.com', { servername: 'other.example.com' })), 'no certificate for another name');
      // The app leaves: so does the listener it opened.
      h.marathon.removeApp('/shop');
      await until(async () => refused(httpsGet(httpsPort, 'shop.example.com', { servername: 'shop.example.com' })), 'the HTTPS listener closed');
    } finally {
      await h.close();
    }
  });

  it('with --ssl-certs, the app certificate answers for its virtual hosts and --ssl-certs for the rest', async () => {
    const httpsPort = await freePort();
    const h = await startHarness({ httpsPort, sslCerts: [fixtureCert('default')] });
    try {
      const b = await h.httpBackend('shop');
      h.marathon.putApp(app('/shop', await freePort(), { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'shop.example.com,*.shop.example.com', HAPROXY_0_SSL_CERT: fixtureCert('b') }), [{ host: b.host, ports: [b.port] }]);
      await h.waitTable((t) => t.services.length === 1, 'the service');
      const shop = await until(async () => {
        const r = await httpsGet(httpsPort, 'shop.example.com', { servername: 'shop.example.com' });
        return r.peer === 'b.example.com' ? r : null;
      }, 'the app certificate');
      assert.equal(shop.status, 200);
      assert.equal((await httpsGet(httpsPort, 'eu.shop.example.com', { servername: 'eu.shop.example.com' })).peer, 'b.example.com', 'a wildcard virtual host');
      const other = await httpsGet(httpsPort, 'other.example.com', { servername: 'other.example.com' });
      assert.equal(other.peer, 'default.example.com');
      assert.equal(other.status, 404);
      const noSni = await httpsGet(httpsPort, 'shop.example.com');
      assert.equal(noSni.peer, 'default.example.com', 'no SNI: the default certificate');
      // Routed by the handshake's name, as marathon-lb routes :443 by SNI: a Host naming another
      // virtual host is misdirected, so a name refused at the handshake cannot be reached through another.
      assert.equal(noSni.status, 421);
      assert.equal((await httpsGet(httpsPort, 'shop.example.com', { servername: 'other.example.com' })).status, 421);
      assert.equal((await httpsGet(httpsPort, 'SHOP.example.com:443', { servername: 'shop.example.com' })).status, 200, 'case and port aside, the same host');
      // HTTP/1.0 may name no host: the handshake's name is the host it asks for (marathon-lb's :443 routes by SNI alone).
      const bare = await tlsRoundTrip(httpsPort, 'GET / HTTP/1.0\r\n\r\n', { servername: 'shop.example.com' });
      assert.match(bare.text, /^HTTP\/1\.1 200 /);
      assert.match(bare.text, /"backend":"shop"/);
      assert.match((await tlsRoundTrip(httpsPort, 'GET / HTTP/1.0\r\n\r\n')).text, /^HTTP\/1\.1 421 /, 'nor a Host nor SNI: misdirected');
    } finally {
      await h.close();
    }
  });
});

describe('TLS handshakes that do not finish', () => {
  it('a client that leaves during the handshake is let go at once, one that stalls after --timeout-client: neither keeps its --maxconn slot', async () => {
    const h = await startHarness({ maxconn: 2, timeoutClient: 1 });
    try {
      const b = await h.httpBackend('web');
      const port = await freePort();
      h.marathon.putApp(app('/secure', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_0_SSL_CERT: fixtureCert('a') }), [{ host: b.host, ports: [b.port] }]);
      await until(() => httpsGet(port, 'secure.example.com'), 'the TLS port');
      const probe = (first: Buffer | null, close: boolean) => new Promise<number>((done) => {
        const started = Date.now();
        const s = connect(port, '127.0.0.1', () => {
          if (close && first) s.end(first);
          else if (close) s.end();
          else if (first) s.write(first);
        });
        s.on('error', () => {});
        s.resume();
        s.on('close', () => done(Date.now() - started));
      });
      // A port probe (connect, then FIN), and the start of a ClientHello then FIN: closed at once.
      const quick = await Promise.all([probe(null, true), probe(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), true)]);
      assert.ok(quick.every((ms) => ms < 500), `closed after ${quick.join(', ')} ms`);
      // Two clients that stop mid-handshake fill --maxconn 2 until --timeout-client (1 s) cuts them.
      const stalled = await Promise.all([probe(null, false), probe(Buffer.from([0x16, 0x03, 0x01]), false)]);
      assert.ok(stalled.every((ms) => ms >= 900 && ms < 5_000), `cut after ${stalled.join(', ')} ms`);
      assert.equal((await httpsGet(port, 'secure.example.com')).status, 200, 'their slots are free again');
      assert.ok(await h.metric('turbine_client_errors_total', { reason: 'tls-handshake' }) >= 3);
    } finally {
      await h.close();
    }
  });
});

describe('TLS with --workers 2', () => {
  it('every worker terminates TLS with the app certificate, and a bad one is reported once in /routes', async () => {
    const m = new FakeMarathon();
    await m.listen();
    const b = await startHttpBackend('web');
    const [adminPort, http, appid, httpsPort, secure, bad] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    const missing = join(mkdtempSync(join(tmpdir(), 'turbine-tls-')), 'missing.pem');
    m.putApp(app('/secure', secure, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'secure.example.com', HAPROXY_0_SSL_CERT: fixtureCert('a') }), [{ host: b.host, ports: [b.port] }]);
    m.putApp(app('/bad', bad, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_0_SSL_CERT: missing }), [{ host: b.host, ports: [b.port] }]);
    const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');
    const child = spawn(process.execPath, [cli, '--marathon', m.url, '--group', 'external', '--bind', '127.0.0.1', '--workers', '2',
      '--admin-port', String(adminPort), '--http-port', String(http), '--appid-port', String(appid), '--https-port', String(httpsPort), '--log-level', 'silent'], { stdio: 'ignore' });
    const admin = `http://127.0.0.1:${adminPort}`;
    try {
      const res = await until(() => httpsGet(secure, 'secure.example.com'), 'the TLS service port', 15_000);
      assert.equal(res.status, 200);
      assert.equal(res.peer, 'a.example.com');
      // Each connection may land on either worker: all of them must serve the certificate.
      for (let i = 0; i < 20; i++) assert.equal((await httpsGet(secure, 'secure.example.com')).peer, 'a.example.com');
      assert.equal((await httpsGet(httpsPort, 'secure.example.com', { servername: 'secure.example.com' })).peer, 'a.example.com', 'SNI on the HTTPS listener');
      const warnings = await until(async () => {
        const w = (await get(`${admin}/routes`)).json<{ warnings: RouteWarning[] }>().warnings.filter((x) => x.appId === '/bad');
        return w.length > 0 ? w : null;
      }, 'the warning from the workers', 15_000);
      assert.deepEqual(warnings.map((w) => w.label), ['HAPROXY_0_SSL_CERT'], 'once, though both workers refused the port');
      assert.equal((await get(`${admin}/_haproxy_health_check`)).status, 200);
      // Each worker loads the file itself and reports twice a second.
      await until(async () => sumMetric((await get(`${admin}/metrics`)).text, 'turbine_tls_certificate_errors_total', { reason: 'unreadable' }) === 2, 'one failed load in each worker');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await m.close();
      await b.stop();
    }
  });
});
