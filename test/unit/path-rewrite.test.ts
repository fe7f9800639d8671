// PROXYPASS, REVPROXY, root REDIR and HSTS as marathon-lb's HAProxy templates apply them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HSTS_HEADER_VALUE, proxyPassTarget, revProxyLocation, rewriteBackendRequest, rootRedirectLocation } from '../../src/proxy/features/path-rewrite.js';

describe('HTTP backend rewrites (marathon-lb templates)', () => {
  it('PROXYPASS strips the prefix and one slash, as reqirep "^([^ :]*)\\ {proxypath}/?(.*)" "\\1\\ /\\2" does', () => {
    const cases: readonly (readonly [string, string, string])[] = [
      ['/test/', '/test/a/b?c=1', '/a/b?c=1'],
      ['/test/', '/test/', '/'],
      ['/test/', '/TEST/x', '/x'],
      ['/test/', '/test', '/test'],
      ['/test/', '/other/test/x', '/other/test/x'],
      ['/api', '/api/v1', '/v1'],
      ['/api', '/api', '/'],
      ['/api', '/api?x', '/?x'],
      ['/api', '/apifoo', '/foo'],
      ['/a.b', '/axb/c', '/axb/c'],
    ];
    for (const [proxyPath, target, expected] of cases) assert.equal(proxyPassTarget(target, proxyPath), expected, `${proxyPath} ${target}`);
  });

  it('REVPROXY replaces a Location that is a path or a URL on a virtual host', () => {
    const vhosts = ['test.example.com', 'alt.example.com'];
    assert.equal(revProxyLocation('/login', vhosts, '/test'), '/test');
    assert.equal(revProxyLocation('http://test.example.com/x', vhosts, '/test'), '/test');
    assert.equal(revProxyLocation('HTTPS://ALT.example.com:8443/x?y', vhosts, '/test'), '/test');
    assert.equal(revProxyLocation('http://other.example.com/x', vhosts, '/test'), null);
    assert.equal(revProxyLocation('http://testXexample.com/x', vhosts, '/test'), null, 'dots are dots');
    assert.equal(revProxyLocation('http://test.example.com', vhosts, '/test'), null, 'the template needs a path');
    assert.equal(revProxyLocation('relative/x', vhosts, '/test'), null);
  });

  it('root REDIR: 301 target for / on a virtual host only', () => {
    const vhosts = ['test.example.com'];
    assert.equal(rootRedirectLocation('/', 'test.example.com', vhosts, '/test'), '/test');
    assert.equal(rootRedirectLocation('/?q=1', 'TEST.example.com', vhosts, '/test'), '/test');
    assert.equal(rootRedirectLocation('/x', 'test.example.com', vhosts, '/test'), null);
    assert.equal(rootRedirectLocation('/', 'test.example.com:80', vhosts, '/test'), null, "hdr(host) -i compares the whole header");
    assert.equal(rootRedirectLocation('/', 'other', vhosts, '/test'), null);
    assert.equal(rootRedirectLocation('/', undefined, vhosts, '/test'), null);
  });

  it("in HAProxy's order: Host and path rewritten first, the root redirect sees the result", () => {
    const service = { vhosts: ['app.example.com', 'b.example.com'], proxyPassPath: '/app', rootRedirect: '/home' };
    assert.deepEqual(rewriteBackendRequest({ target: '/app/x', host: 'b.example.com' }, service), { redirect: null, target: '/x', host: 'app.example.com' });
    assert.deepEqual(rewriteBackendRequest({ target: '/app', host: 'LB:10000' }, service), { redirect: '/home', target: '/', host: 'app.example.com' });
    assert.deepEqual(rewriteBackendRequest({ target: '/', host: 'b.example.com' }, { ...service, proxyPassPath: null }), { redirect: '/home', target: '/', host: null });
  });

  it('HSTS is the value marathon-lb adds', () => {
    assert.equal(HSTS_HEADER_VALUE, 'max-age=15768000');
  });
});
