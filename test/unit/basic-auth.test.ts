// HAPROXY_{n}_AUTH at the proxy: which Authorization headers pass, and the 401's challenge.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CachedBasicAuth, basicChallenge, compileBasicAuth, parseBasicCredentials, type BasicAuthChecker } from '../../src/proxy/features/basic-auth.js';
import type { PasswordHash } from '../../src/access/password-hash.js';

const basic = (userPass: string) => 'Basic ' + Buffer.from(userPass).toString('base64');

function checker(passwordHash: string, cacheSize?: number): BasicAuthChecker {
  const compiled = compileBasicAuth({ realm: 'realm', user: 'testuser', passwordHash }, cacheSize);
  assert.ok(compiled.ok, compiled.ok ? '' : compiled.error);
  return compiled.checker;
}

// openssl passwd -6 -salt abcdefghijklmnop pw
const SHA512_PW = '$6$abcdefghijklmnop$GRSTFj3H0pZ9BY1uhdqITG.qORbXkTk40qgaa1roNICfs/axSgdNnbKEYghuyLnrmnFXvSE09GdxJbCDOnxdc1';

describe('basic auth (HAPROXY_{n}_AUTH)', () => {
  it('the right user and password pass; anything else does not', () => {
    const auth = checker(SHA512_PW);
    assert.equal(auth.allows(basic('testuser:pw')), true);
    assert.equal(auth.allows('basic   ' + Buffer.from('testuser:pw').toString('base64')), true, 'scheme is case-insensitive');
    assert.equal(auth.allows(basic('testuser:PW')), false);
    assert.equal(auth.allows(basic('other:pw')), false);
    assert.equal(auth.allows(basic('testuser')), false, 'no colon');
    assert.equal(auth.allows(basic('testuser:pw:')), false, 'the password is everything after the first colon');
    assert.equal(auth.allows('Bearer abc'), false);
    assert.equal(auth.allows('Basic !!!'), false);
    assert.equal(auth.allows(undefined), false);
  });

  it("marathon-lb's plain-text example (realm:testuser:testpasswd) works as HAProxy's insecure-password", () => {
    const auth = checker('testpasswd');
    assert.equal(auth.allows(basic('testuser:testpasswd')), true);
    assert.equal(auth.allows(basic('testuser:testpasswd2')), false);
  });

  it('a password containing a colon is kept whole', () => {
    assert.deepEqual(parseBasicCredentials(basic('u:a:b'))?.password.toString(), 'a:b');
  });

  it('a header that matched is not hashed again; the cache keeps the most recently used', () => {
    let checks = 0;
    const counting: PasswordHash = { scheme: 'plain', verify: (pw) => { checks += 1; return pw.toString() === 'pw'; } };
    const auth = new CachedBasicAuth(Buffer.from('testuser'), counting, basicChallenge('r'), 2);
    const token = Buffer.from('testuser:pw').toString('base64');
    const [a, b, c] = [`Basic ${token}`, `basic ${token}`, `BASIC ${token}`];
    const allowed = (header: string) => assert.equal(auth.allows(header), true, header);
    allowed(a); allowed(b);
    assert.equal(checks, 2);
    allowed(a); allowed(b);
    assert.equal(checks, 2, 'both served from the cache');
    allowed(a); // a is now the most recent: c evicts b
    allowed(c);
    allowed(a);
    assert.equal(checks, 3);
    allowed(b);
    assert.equal(checks, 4, 'b was evicted');
    assert.equal(auth.allows(basic('testuser:nope')), false);
    assert.equal(auth.allows(basic('testuser:nope')), false);
    assert.equal(checks, 6, 'failures are checked every time, never cached');
  });

  it('an unusable hash or an empty user is refused at compile time (the port fails closed)', () => {
    const bcrypt = compileBasicAuth({ realm: 'r', user: 'u', passwordHash: '$2y$10$abc' });
    assert.equal(bcrypt.ok, false);
    assert.match(bcrypt.ok ? '' : bcrypt.error, /^AUTH: unsupported crypt hash/);
    assert.equal(compileBasicAuth({ realm: 'r', user: '', passwordHash: 'x' }).ok, false);
  });

  it('the challenge quotes the realm safely', () => {
    assert.equal(checker('x').challenge, 'Basic realm="realm"');
    assert.equal(basicChallenge('my "quoted" \\ realm'), 'Basic realm="my \\"quoted\\" \\\\ realm"');
    assert.equal(basicChallenge('evil\r\nSet-Cookie: x=1'), 'Basic realm="evil??Set-Cookie: x=1"');
    assert.equal(basicChallenge('ünï'), 'Basic realm="?n?"');
  });
});
