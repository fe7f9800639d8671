// Needs the openssl command (Debian package openssl) to make certificates: a system test.
// --ssl-certs: the HTTPS virtual-host listener terminates TLS with the certificate whose name
// matches the client's SNI, routes by Host, and tells the backend the request came over https.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { app, startHarness } from '../support/harness.js';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { freePort, get, until } from '../support/net.js';

/** A self-signed certificate and key for `name`, in one PEM file as marathon-lb's --ssl-certs takes them. */
function certificate(dir: string, name: string, altName = `DNS:${name}`): string {
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name}`,
    '-addext', `subjectAltName=${altName}`, '-keyout', key, '-out', crt], { stdio: 'ignore' });
  const pem = join(dir, `${name}.pem`);
  writeFileSync(pem, readFileSync(crt, 'utf8') + readFileSync(key, 'utf8'));
  return pem;
}

function httpsGet(port: number, host: string): Promise<{ status: number; body: string; peerName: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', servername: host, headers: { host }, rejectUnauthorized: false, agent: false }, (res) => {
      let body = '';
      const cert = (res.socket as import('node:tls').TLSSocket).getPeerCertificate();
      res.on('data', (c: Buffer) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, peerName: String(cert.subject?.CN ?? '') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS virtual hosts', () => {
  it('terminates TLS with the certificate SNI names, routes by Host, and sets X-Forwarded-Proto https', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'turbine-tls-'));
    const certs = [certificate(dir, 'default.example.com'), certificate(dir, 'secure.example.com')];
    const httpsPort = await freePort();
    const h = await startHarness({ sslCerts: certs, httpsPort });
    try {
      const b = await h.httpBackend('secure');
      h.marathon.putApp(app('/secure', await freePort(), { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'secure.example.com' }), [{ host: b.host, ports: [b.port] }]);
      await h.waitTable((t) => t.services.length === 1, 'the service');
      const res = await httpsGet(httpsPort, 'secure.example.com');
      assert.equal(res.status, 200);
      assert.equal(res.peerName, 'secure.example.com', 'the certificate chosen by SNI');
      const seen = JSON.parse(res.body) as { backend: string; headers: Record<string, string> };
      assert.equal(seen.backend, 'secure');
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      const unknown = await httpsGet(httpsPort, 'other.example.com');
      assert.equal(unknown.status, 404);
      assert.equal(unknown.peerName, 'default.example.com', 'the first certificate is the default');
    } finally {
      await h.close();
    }
  });

  it('a Marathon served over HTTPS is trusted with --marathon-ca-cert, and refused without it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'turbine-tls-'));
    const pem = certificate(dir, 'marathon.local', 'IP:127.0.0.1');
    const tls = { cert: readFileSync(join(dir, 'marathon.local.crt'), 'utf8'), key: readFileSync(join(dir, 'marathon.local.key'), 'utf8') };
    const marathon = new FakeMarathon({ tls });
    await marathon.listen();
    const port = await freePort();
    const trusted = await startHarness({ marathon: [marathon.url], marathonCaCert: pem }, new FakeMarathon());
    const untrusted = await startHarness({ marathon: [marathon.url] }, new FakeMarathon());
    try {
      const b = await trusted.httpBackend('over-tls');
      marathon.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: b.host, ports: [b.port] }]);
      await until(async () => (await get(`http://127.0.0.1:${port}/`)).json().backend === 'over-tls', 'served from the HTTPS Marathon');
      await until(() => marathon.streamCount() === 1, 'the event stream over TLS');
      const health = await until(async () => {
        const body = (await get(`${untrusted.admin}/_haproxy_health_check`)).json<{ status: string; marathon: { lastError: string | null } }>();
        return body.marathon.lastError ? body : null;
      }, 'the untrusted one reporting why');
      assert.equal(health.status, 'starting');
      assert.match(health.marathon.lastError!, /certificate|self.signed|UNABLE_TO_VERIFY/i);
    } finally {
      await trusted.close();
      await untrusted.close();
      await marathon.close();
    }
  });
});
