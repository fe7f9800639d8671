// The buffer heads for backends are built in: what was added comes out whole, however long, and a
// build cut short leaves nothing behind for the next head.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeadText } from '../../src/proxy/http1/head-text.js';

describe('head text', () => {
  it('gives back what was added, latin1 byte for byte, past its first buffer', () => {
    const t = new HeadText();
    const value = 'caf\u00e9 '.repeat(2000);
    assert.equal(t.begin().add('GET / HTTP/1.1\r\n').add('x: ').add(value).add('\r\n').take(), `GET / HTTP/1.1\r\nx: ${value}\r\n`);
    assert.equal(t.add('next').take(), 'next');
  });

  it('starts a head from nothing even when the last one was never taken', () => {
    const t = new HeadText();
    t.begin().add('GET /half');
    assert.equal(t.begin().add('GET /whole').take(), 'GET /whole');
  });
});
