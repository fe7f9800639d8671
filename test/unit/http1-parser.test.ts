// The request head parser and body framer of the HTTP/1.1 data plane: every smuggling shape is
// refused with the status a client sees, and a body ends exactly where its framing says.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BodyFramer } from '../../src/proxy/http1/body.js';
import { parseRequestHead } from '../../src/proxy/http1/request-head.js';
import { parseResponseHead, responseText } from '../../src/proxy/http1/response-head.js';
import { HttpError } from '../../src/proxy/http1/syntax.js';

const LIMIT = 16 * 1024;
const parse = (text: string) => parseRequestHead(Buffer.from(text, 'latin1'), LIMIT);

function refused(text: string, status = 400): void {
  assert.throws(() => parse(text), (err: unknown) => err instanceof HttpError && err.status === status, JSON.stringify(text));
}

describe('request head parser', () => {
  it('reads a plain head and says where it ends', () => {
    const text = 'GET /a?b=1 HTTP/1.1\r\nHost: a.test\r\nX-One:  v 1 \r\n\r\nNEXT';
    const r = parse(text)!;
    assert.equal(r.length, text.length - 4);
    assert.equal(r.head.method, 'GET');
    assert.equal(r.head.path, '/a?b=1');
    assert.equal(r.head.authority, 'a.test');
    assert.deepEqual(r.head.fields, ['Host', 'a.test', 'X-One', 'v 1']);
    assert.equal(r.head.framing, 'none');
    assert.equal(r.head.keepAlive, true);
  });

  it('waits for more bytes while the head is incomplete', () => {
    assert.equal(parse('GET / HTTP/1.1\r\nHost: a\r\n'), null);
  });

  it('refuses Content-Length with Transfer-Encoding, repeated or listed Content-Length', () => {
    refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n');
  });

  it('accepts only a final, single chunked coding; other codings are 501, a non-final chunked 400', () => {
    assert.equal(parse('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n')!.head.framing, 'chunked');
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501);
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n', 501);
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n');
  });

  it('refuses obs-fold, bare LF, bare CR, NUL and control bytes, bad names', () => {
    refused('GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n');
    refused('GET / HTTP/1.1\r\nHost: a\r\n\tX: 1\r\n\r\n');
    refused('GET / HTTP/1.1\nHost: a\r\n\r\n');
    refused('GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n');
    refused('GET / HTTP/1.1\r\nHost: a\n\n');
    refused('GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n');
    refused('GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n');
    refused('GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n');
    refused('GET / HTTP/1.1\r\nHost: a\r\nX\0: 1\r\n\r\n');
    refused('GET / HTTP/1.1\r\nHost: a\r\nX Y: 1\r\n\r\n');
    refused('GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n');
    refused('GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n');
    refused('G(T / HTTP/1.1\r\nHost: a\r\n\r\n');
    refused('GET  / HTTP/1.1\r\nHost: a\r\n\r\n');
    refused('GET / HTTP/1.1 \r\nHost: a\r\n\r\n', 505);
    refused('GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505);
    refused('GET / http/1.1\r\nHost: a\r\n\r\n');
  });

  it('refuses two Host headers, none on HTTP/1.1, and a Host that is not an authority', () => {
    refused('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    refused('GET / HTTP/1.1\r\n\r\n');
    refused('GET / HTTP/1.1\r\nHost: a/b\r\n\r\n');
    refused('GET / HTTP/1.1\r\nHost: a b\r\n\r\n');
    assert.equal(parse('GET / HTTP/1.0\r\n\r\n')!.head.keepAlive, false);
  });

  it('refuses an oversized head with 431, complete or not', () => {
    refused(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(LIMIT)}\r\n\r\n`, 431);
    refused(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(LIMIT)}`, 431);
  });

  it('absolute form: the authority wins over Host, the backend gets the origin form', () => {
    const r = parse('GET http://b.test/api/x?q HTTP/1.1\r\nHost: a.test\r\n\r\n')!.head;
    assert.equal(r.authority, 'b.test');
    assert.equal(r.path, '/api/x?q');
    assert.equal(r.absolute, true);
    assert.equal(parse('GET HTTP://b.test HTTP/1.1\r\nHost: a\r\n\r\n')!.head.path, '/');
    assert.equal(parse('GET http://b.test?x HTTP/1.1\r\nHost: a\r\n\r\n')!.head.path, '/?x');
    refused('GET http://user@b.test/ HTTP/1.1\r\nHost: a\r\n\r\n');
    refused('GET ftp://b.test/ HTTP/1.1\r\nHost: a\r\n\r\n');
    refused('GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n');
    refused('GET b.test/x HTTP/1.1\r\nHost: a\r\n\r\n');
  });

  it('asterisk form only for OPTIONS; CONNECT is not served', () => {
    assert.equal(parse('OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n')!.head.path, '*');
    refused('GET * HTTP/1.1\r\nHost: a\r\n\r\n');
    refused('CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n', 405);
  });

  it('reads keep-alive and upgrade from Connection', () => {
    assert.equal(parse('GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n')!.head.keepAlive, false);
    assert.equal(parse('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')!.head.keepAlive, true);
    assert.equal(parse('GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n')!.head.keepAlive, false);
    const up = parse('GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n')!.head;
    assert.equal(up.upgrade, true);
    assert.equal(parse('GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n')!.head.upgrade, false);
  });
});

/** Feeds `text` to a framer in pieces of `step` bytes; the offset just past the body, or throws. */
function bodyEnd(framer: BodyFramer, text: string, step: number): number {
  const buf = Buffer.from(text, 'latin1');
  for (let at = 0; at < buf.length; at += step) {
    const piece = buf.subarray(at, Math.min(at + step, buf.length));
    const n = framer.feed(piece, 0, 400);
    if (framer.done) return at + n;
  }
  return -1;
}

describe('optional white space', () => {
  it('is SP and HTAB only: a Transfer-Encoding or Connection value padded with NBSP is not chunked or close (found by the differential, seed 457183)', () => {
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\xa0chunked\r\n\r\n');
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\xa0\r\n\r\n');
    assert.equal(parse('GET / HTTP/1.1\r\nHost: a\r\nConnection:\xa0close\r\n\r\n')!.head.keepAlive, true);
  });

  it('after a Content-Length is SP only, as llhttp reads it (found by the differential, seed 473970)', () => {
    refused('DELETE / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\t\r\n\r\nbb');
    assert.equal(parse('DELETE / HTTP/1.1\r\nHost: a\r\nContent-Length: 2 \r\n\r\nbb')!.head.contentLength, 2);
    assert.equal(parse('DELETE / HTTP/1.1\r\nHost: a\r\nContent-Length:\t2\r\n\r\nbb')!.head.contentLength, 2);
    assert.equal(parse('GET / HTTP/1.1\r\nHost: a\r\nConnection: \tclose \r\n\r\n')!.head.keepAlive, false);
  });
});

describe('body framer', () => {
  it('finds the end of a chunked body with extensions and trailers, in any split', () => {
    const body = '5;name="v";flag;k=tok\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n';
    for (const step of [1, 2, 3, 7, 1000]) {
      const framer = new BodyFramer();
      framer.reset(true, 0);
      assert.equal(bodyEnd(framer, `${body}GET / HTTP/1.1\r\n`, step), body.length, `step ${step}`);
    }
  });

  it('refuses what llhttp refuses after a chunk: a request line as a trailer, bytes outside tokens in an extension (found by the differential test)', () => {
    for (const body of ['3\r\nabc\r\n0\r\nPOST /x HTTP/1.1\r\nHost: a\r\n\r\n', '1;name=v>lue\r\nb\r\n0\r\n\r\n', '1;name=va\xa7ue\r\nb\r\n0\r\n\r\n',
      '1;name="v"x\r\nb\r\n0\r\n\r\n', '1;name="v\\"\r\nb\r\n0\r\n\r\n', '1;na=e=value\r\nb\r\n0\r\n\r\n', '1;=v\r\nb\r\n0\r\n\r\n',
      '1;\r\nb\r\n0\r\n\r\n', '1;a=\r\nb\r\n0\r\n\r\n', '1;a="x"="y"\r\nb\r\n0\r\n\r\n']) {
      const framer = new BodyFramer();
      framer.reset(true, 0);
      assert.throws(() => framer.feed(Buffer.from(body, 'latin1'), 0, 400), /trailer|extension/, JSON.stringify(body));
    }
  });

  it('counts down a Content-Length body and leaves the next message', () => {
    const framer = new BodyFramer();
    framer.reset(false, 5);
    assert.equal(framer.feed(Buffer.from('helloGET'), 0, 400), 5);
    assert.equal(framer.done, true);
  });

  it('refuses bad chunk sizes, oversized sizes, data longer than its size, bare LF', () => {
    for (const bad of ['x\r\n', '\r\n', ' 5\r\nhello\r\n', '5 \r\nhello\r\n', '-5\r\n', '1234567890abc\r\n', '5\r\nhelloX\r\n',
      '5\nhello\r\n', '5\r\nhello\n', '0\r\nX: 1\n\r\n', '0\r\n X: 1\r\n\r\n', '5;a\0\r\nhello\r\n']) {
      const framer = new BodyFramer();
      framer.reset(true, 0);
      assert.throws(() => bodyEnd(framer, bad, 100), HttpError, JSON.stringify(bad));
    }
  });
});

describe('response head parser', () => {
  const res = (text: string, head = false) => parseResponseHead(Buffer.from(text, 'latin1'), 64 * 1024, head)!.head;

  it('decides the framing of a response', () => {
    assert.equal(res('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n').framing, 'length');
    assert.equal(res('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n').framing, 'chunked');
    assert.equal(res('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n').framing, 'close');
    assert.equal(res('HTTP/1.1 200 OK\r\n\r\n').framing, 'close');
    assert.equal(res('HTTP/1.1 200 OK\r\n\r\n').keepAlive, false);
    assert.equal(res('HTTP/1.1 204 No Content\r\n\r\n').framing, 'none');
    assert.equal(res('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n').framing, 'none');
    assert.equal(res('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', true).framing, 'none');
    assert.equal(res('HTTP/1.1 100 Continue\r\n\r\n').status, 100);
    assert.equal(res('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n').keepAlive, false);
    assert.equal(res('HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n').keepAlive, false);
    assert.equal(res('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n').keepAlive, true);
    assert.equal(res('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 1\r\n\r\n').keepAlive, false);
    assert.equal(res('HTTP/1.0 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n').keepAlive, false);
  });

  it('gives each head only its own fields, after a longer one (the parsers reuse their arrays)', () => {
    const long = Array.from({ length: 40 }, (_, i) => `X-${i}: ${i}\r\n`).join('');
    assert.equal(parse(`GET / HTTP/1.1\r\nHost: a\r\n${long}\r\n`)!.head.fields.length, 82);
    assert.deepEqual(parse('GET / HTTP/1.1\r\nHost: b\r\n\r\n')!.head.fields, ['Host', 'b']);
    const text = (head: string) => {
      const buf = Buffer.from(head, 'latin1');
      return responseText(buf, parseResponseHead(buf, LIMIT, false)!.head);
    };
    assert.equal(text(`HTTP/1.1 200 OK\r\n${long}Content-Length: 0\r\n\r\n`).fields.length, 82);
    const first = Buffer.from('HTTP/1.1 200 OK\r\nA: 1\r\n\r\n', 'latin1');
    const stale = parseResponseHead(first, LIMIT, false)!.head;
    res('HTTP/1.1 204 No Content\r\n\r\n');
    assert.throws(() => responseText(first, stale), /after another head was parsed/);
    assert.deepEqual(text('HTTP/1.1 404 Gone Away\r\nContent-Length: 0\r\n\r\n'), { reason: 'Gone Away', fields: ['Content-Length', '0'] });
  });

  it('treats an ambiguous response as the backend\'s fault (502)', () => {
    for (const bad of ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'HTTP/1.1 2000 OK\r\n\r\n', 'HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n',
      'HTTP/1.1 200 OK\rX-A: 1\r\nContent-Length: 0\r\n\r\n', 'HTTP/1.1 200 OK\r\nX: 1\nY: 2\r\nContent-Length: 0\r\n\r\n', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 200\nContent-Length: 0\r\n\r\n']) {
      assert.throws(() => res(bad), (err: unknown) => err instanceof HttpError && err.status === 502, JSON.stringify(bad));
    }
  });
});
