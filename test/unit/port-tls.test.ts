// readPortTls: what a service port's listener applies of HAPROXY_{n}_SSL_CERT and
// HAPROXY_{n}_BIND_OPTIONS, as marathon-lb writes them into `bind ADDR:PORT ssl crt CERT OPTIONS`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readPortTls } from '../../src/routing/labels.js';
import { buildRoutingTable } from '../../src/routing/builder.js';
import { decodeApp } from '../../src/marathon/decode.js';

describe('readPortTls', () => {
  it("applies marathon-lb's documented example: ciphers, force-tlsv12, no-sslv3", () => {
    const { tls, notApplied, refused } = readPortTls('/etc/ssl/site.pem', 'ciphers AES128+EECDH:AES128+EDH force-tlsv12 no-sslv3');
    assert.deepEqual(tls.certs, ['/etc/ssl/site.pem']);
    assert.equal(tls.ciphers, 'AES128+EECDH:AES128+EDH');
    assert.deepEqual([tls.minVersion, tls.maxVersion], ['TLSv1.2', 'TLSv1.2']);
    assert.deepEqual(notApplied, []);
    assert.equal(refused, null);
  });

  it('no-sslv3 alone leaves the default versions: it never lowers the minimum', () => {
    const { tls } = readPortTls('/c.pem', 'no-sslv3');
    assert.deepEqual([tls.minVersion, tls.maxVersion], ['TLSv1.2', 'TLSv1.3']);
  });

  it('ssl-min-ver, ssl-max-ver and no-tlsv1x narrow the range', () => {
    assert.deepEqual(pick(readPortTls('/c.pem', 'ssl-min-ver TLSv1.3').tls), ['TLSv1.3', 'TLSv1.3']);
    assert.deepEqual(pick(readPortTls('/c.pem', 'ssl-min-ver TLSv1.0 ssl-max-ver TLSv1.2 no-tlsv10').tls), ['TLSv1.1', 'TLSv1.2']);
  });

  it('crt adds certificates after SSL_CERT; ssl crt alone is enough for TLS', () => {
    assert.deepEqual(readPortTls('/a.pem', 'crt /b.pem').tls.certs, ['/a.pem', '/b.pem']);
    assert.deepEqual(readPortTls(null, 'ssl crt /b.pem alpn h2,http/1.1 strict-sni').tls, {
      certs: ['/b.pem'], ciphers: null, minVersion: null, maxVersion: null, alpn: ['h2', 'http/1.1'], strictSni: true, honorCipherOrder: true,
    });
  });

  it('reports the keywords it does not apply, skipping their values', () => {
    assert.deepEqual(readPortTls('/c.pem', 'accept-proxy maxconn 100 tfo no-tls-tickets').notApplied, ['accept-proxy', 'maxconn', 'tfo', 'no-tls-tickets']);
  });

  it('TLS keywords on a port without a certificate have nothing to apply to', () => {
    const reading = readPortTls(null, 'ciphers HIGH');
    assert.deepEqual(reading.tls.certs, []);
    assert.deepEqual(reading.notApplied, ['ciphers (no certificate: the port has no TLS)']);
    assert.equal(reading.refused, null);
  });

  it('refuses what would serve the port weaker than asked: client-certificate verification, bad versions, ssl without a certificate', () => {
    assert.match(readPortTls('/c.pem', 'verify required ca-file /ca.pem').refused!, /^verify required/);
    assert.equal(readPortTls('/c.pem', 'verify none').refused, null);
    assert.match(readPortTls('/c.pem', 'ssl-min-ver TLSv9').refused!, /^ssl-min-ver: expected one of/);
    assert.match(readPortTls('/c.pem', 'force-sslv3').refused!, /no TLS version left/);
    assert.match(readPortTls(null, 'ssl').refused!, /ssl without a certificate/);
    assert.match(readPortTls('/c.pem', 'ciphers').refused!, /ciphers needs a value/);
  });
});

describe('TLS labels in the routing table', () => {
  const table = (labels: Record<string, string>) => buildRoutingTable([decodeApp({
    id: '/web', labels: { HAPROXY_GROUP: 'external', ...labels }, portDefinitions: [{ port: 10001, protocol: 'tcp' }], tasks: [],
  }, [])!], { groups: ['external'], strictMode: false, healthCheck: false });

  it('SSL_CERT is applied: no warning', () => {
    assert.deepEqual(table({ HAPROXY_0_SSL_CERT: '/c.pem' }).warnings, []);
  });

  it('a refused BIND_OPTIONS is a warning; the app stays in the table for its plain-HTTP virtual hosts', () => {
    const t = table({ HAPROXY_0_VHOST: 'web.example.com', HAPROXY_0_SSL_CERT: '/c.pem', HAPROXY_0_BIND_OPTIONS: 'verify required' });
    assert.equal(t.services.length, 1);
    assert.deepEqual(t.warnings.map((w) => w.label), ['HAPROXY_0_BIND_OPTIONS']);
  });

  it('alpn beyond http/1.1 on an http-mode port is reported as not applied', () => {
    const t = table({ HAPROXY_0_MODE: 'http', HAPROXY_0_SSL_CERT: '/c.pem', HAPROXY_0_BIND_OPTIONS: 'alpn h2,http/1.1' });
    assert.deepEqual(t.warnings.map((w) => [w.label, w.kind]), [['HAPROXY_0_BIND_OPTIONS', 'not-applied']]);
  });
});

function pick(tls: { minVersion: string | null; maxVersion: string | null }) {
  return [tls.minVersion, tls.maxVersion];
}
