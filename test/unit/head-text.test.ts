// The buffer heads for backends are built in: what was added comes out whole, however long, a
// build cut short leaves nothing behind for the next head, and a head handed out never changes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeadText } from '../../src/proxy/http1/head-text.js';

describe('head text', () => {
  it('gives back what was added, latin1 byte for byte, past its first buffer', () => {
    const t = new HeadText();
    const value = 'caf\u00e9 '.repeat(2000);
    assert.equal(t.begin().add('GET / HTTP/1.1\r\n').add('x: ').add(value).add('\r\n').take().toString('latin1'), `GET / HTTP/1.1\r\nx: ${value}\r\n`);
    assert.equal(t.add('next').take().toString('latin1'), 'next');
  });

  it('copies bytes added whole, between strings, past its first buffer too', () => {
    const t = new HeadText();
    const fixed = Buffer.from('x-forwarded-proto: http\r\n', 'latin1');
    assert.equal(t.begin().add('GET / HTTP/1.1\r\n').addBytes(fixed).add('\r\n').take().toString('latin1'), 'GET / HTTP/1.1\r\nx-forwarded-proto: http\r\n\r\n');
    const big = Buffer.alloc(40_000, 'y');
    const head = t.begin().add('GET /big HTTP/1.1\r\n').addBytes(big).addBytes(fixed).take().toString('latin1');
    assert.equal(head, `GET /big HTTP/1.1\r\n${'y'.repeat(40_000)}x-forwarded-proto: http\r\n`);
  });

  it('starts a head from nothing even when the last one was never taken', () => {
    const t = new HeadText();
    t.begin().add('GET /half');
    assert.equal(t.begin().add('GET /whole').take().toString('latin1'), 'GET /whole');
  });

  it('leaves a head it handed out as it was while later heads are built, in its slab and past it', () => {
    const t = new HeadText();
    const first = t.begin().add('GET /first HTTP/1.1\r\n').take();
    const taken = [first];
    for (let i = 0; i < 3000; i += 1) taken.push(t.begin().add(`GET /${i} HTTP/1.1\r\n`).take());
    t.begin().add('x'.repeat(40_000));
    assert.equal(first.toString('latin1'), 'GET /first HTTP/1.1\r\n');
    assert.equal(taken[2999]!.toString('latin1'), 'GET /2998 HTTP/1.1\r\n');
  });
});
