// HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL: which client addresses (as Node reports them) match.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAcl, type AddressMatcher } from '../../src/access/network-acl.js';

function acl(...entries: string[]): AddressMatcher {
  const parsed = parseAcl(entries);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
  return parsed.matcher;
}

describe('network allow-list (BACKEND_NETWORK_ALLOWED_ACL)', () => {
  it("marathon-lb's example: a /24 and one address", () => {
    const allowed = acl(...'10.1.40.0/24 10.1.55.43'.split(' '));
    for (const a of ['10.1.40.0', '10.1.40.255', '10.1.55.43', '::ffff:10.1.40.7', '::FFFF:10.1.55.43']) assert.equal(allowed(a), true, a);
    for (const a of ['10.1.41.0', '10.1.55.42', '10.1.55.44', '::1', '2001:db8::1', 'garbage', '']) assert.equal(allowed(a), false, a);
  });

  it('IPv6 networks, with and without ::, and embedded IPv4', () => {
    const allowed = acl('2001:db8::/32', '::1', 'fe80:0:0:0:0:0:0:1/128', '64:ff9b::192.0.2.0/120');
    for (const a of ['2001:db8::1', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', '::1', 'fe80::1', '64:ff9b::c000:2ff']) assert.equal(allowed(a), true, a);
    for (const a of ['2001:db9::1', '::2', 'fe80::2', '127.0.0.1', '64:ff9b::c000:300']) assert.equal(allowed(a), false, a);
  });

  it('prefix edge cases: /0 allows every address of its family, /32 one, netmasks like HAProxy', () => {
    assert.equal(acl('0.0.0.0/0')('203.0.113.9'), true);
    assert.equal(acl('0.0.0.0/0')('2001:db8::1'), false);
    assert.equal(acl('::/0')('2001:db8::1'), true);
    assert.equal(acl('192.0.2.1/32')('192.0.2.1'), true);
    assert.equal(acl('192.0.2.1/32')('192.0.2.2'), false);
    assert.equal(acl('192.0.2.77/255.255.255.0')('192.0.2.200'), true, 'host bits of the entry are masked off');
    assert.equal(acl('192.0.2.0/255.255.255.0')('192.0.3.1'), false);
    assert.equal(acl('::ffff:10.0.0.0/104')('10.200.1.1'), true, 'an IPv4-mapped entry matches IPv4 clients');
  });

  it('a malformed entry is refused with the entry named, so the port can fail closed', () => {
    const refused: readonly (readonly [string[], RegExp])[] = [
      [['10.1.40.0/33'], /prefix length out of range/],
      [['10.1.40.0/'], /not a prefix length/],
      [['10.1.40.0/255.0.255.0'], /not a prefix length or netmask/],
      [['10.1.300.0/24'], /"10.1.300.0\/24": not an IPv4 or IPv6 address/],
      [['010.1.1.1'], /not an IPv4/],
      [['intranet.example.com'], /host names are not resolved/],
      [['2001:db8::/129'], /out of range/],
      [['fe80::1%eth0'], /not an IPv4 or IPv6/],
      [['10.0.0.1', 'oops'], /"oops"/],
      [[], /no address/],
    ];
    for (const [entries, reason] of refused) {
      const parsed = parseAcl(entries);
      assert.equal(parsed.ok, false, entries.join(' '));
      assert.match(parsed.ok ? '' : parsed.error, reason);
    }
  });
});
