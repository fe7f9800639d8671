// HAPROXY_{n}_AUTH hashes: the vectors from Drepper's SHA-crypt specification, and hashes made by
// `openssl passwd -6/-5/-1` (the tool marathon-lb's wiki tells users to run).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ROUNDS_MAX, parsePasswordHash } from '../../src/access/password-hash.js';

function verifies(hash: string, password: string): boolean {
  const parsed = parsePasswordHash(hash);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
  return parsed.hash.verify(password);
}

const VECTORS: readonly (readonly [string, string, string])[] = [
  // https://www.akkadia.org/drepper/SHA-crypt.txt, test vectors
  ['spec', 'Hello world!', '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1'],
  ['spec', 'Hello world!', '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.'],
  ['spec', 'This is just a test', '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0'],
  ['spec', 'Hello world!', '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5'],
  ['spec', 'Hello world!', '$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA'],
  ['spec', 'This is just a test', '$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5'],
  // openssl passwd
  ['openssl -6', 'pw', '$6$abcdefghijklmnop$GRSTFj3H0pZ9BY1uhdqITG.qORbXkTk40qgaa1roNICfs/axSgdNnbKEYghuyLnrmnFXvSE09GdxJbCDOnxdc1'],
  ['openssl -6 (UTF-8)', 'pässwörd', '$6$Ünï$OQuCGFZno2R3bT12/sKUm/PCWQ7Cl9ruw7zVKutnpCjgtBT4OqWzjoOlvj6Sh2pmhoKmVpxB2pIFm5CifRnjM1'],
  ['openssl -5', 'x', '$5$rounds=1000$abc$UxKib5kobt2BZp/yfOEWbjik.BPMiS9MzbXyO6zXMC0'],
  ['openssl -1', 'Hello world!', '$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1'],
  ['openssl -1', 'pw', '$1$abc$Kb85XxsXB.VXinPhbS4431'],
  ['openssl -1 (over 16 bytes)', 'a much longer password of more than sixteen bytes', '$1$12345678$E7UbFI8tSzTradbWxgwqE0'],
  ['openssl -1 (empty)', '', '$1$x$fwjfZtMwarkdetsjiQreU1'],
];

describe('password hashes (HAPROXY_{n}_AUTH)', () => {
  for (const [source, password, hash] of VECTORS) {
    it(`${source}: ${hash.slice(0, 24)}... accepts its password and refuses others`, () => {
      assert.equal(verifies(hash, password), true);
      assert.equal(verifies(hash, password + 'x'), false);
      assert.equal(verifies(hash, 'y'.repeat(Math.max(1, password.length))), false);
    });
  }

  it('a value without $id$ is a plain password (HAProxy insecure-password), compared exactly', () => {
    const parsed = parsePasswordHash('testpasswd');
    assert.equal(parsed.ok && parsed.hash.scheme, 'plain');
    assert.equal(verifies('testpasswd', 'testpasswd'), true);
    assert.equal(verifies('testpasswd', 'TESTPASSWD'), false);
    assert.equal(verifies('testpasswd', 'testpass'), false);
  });

  it('rounds below 1000 count as 1000, as glibc clamps them (spec vector)', () => {
    assert.equal(verifies('$6$rounds=10$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.', 'the minimum number is still observed'), true);
  });

  it('refuses what it cannot check, with the reason, so the port can fail closed', () => {
    const refused: readonly (readonly [string, RegExp])[] = [
      ['$2y$10$abcdefghijklmnopqrstuu5Nt8vXwWJLRjHfDvG0aBsbCwHbVBWq', /unsupported crypt hash \$2y\$/],
      ['$y$j9T$salt$hash', /unsupported crypt hash \$y\$/],
      ['$6$salt$tooshort', /hash part must be 86 characters/],
      ['$1$salt$' + 'a'.repeat(21) + '!', /hash part must be 22/],
      ['$5$rounds=abc$salt$' + 'a'.repeat(43), /rounds=abc is not a number/],
      [`$6$rounds=${ROUNDS_MAX + 1}$salt$${'a'.repeat(86)}`, /more than 1000000 rounds is refused/],
      ['$1$rounds=1000$salt$' + 'a'.repeat(22), /no rounds/],
      // HAProxy reads it as a DES hash: as a plain password the hash text would be what logs in.
      ['abhWCwoTZY2c6', /DES crypt hash/],
      ['$', /malformed crypt hash/],
      ['', /empty password hash/],
    ];
    for (const [hash, reason] of refused) {
      const parsed = parsePasswordHash(hash);
      assert.equal(parsed.ok, false, hash);
      assert.match(parsed.ok ? '' : parsed.error, reason);
    }
  });
});
