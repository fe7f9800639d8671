// The one place a client's request head is read. Strict, as HAProxy and llhttp are at the edge:
// anything two HTTP parsers could read two ways is refused, never guessed at, and the body's
// framing is decided here once (RFC 9112 6.3).
import { METHODS } from 'node:http';
import { CR, HttpError, LF, SP, TCHAR, badRequest, bytesAre, contentLength, fieldStrings, headEnd, http1At, latin1, scanFields, trimOws } from './syntax.js';

export type RequestFraming = 'none' | 'length' | 'chunked';

export interface RequestHead {
  method: string;
  /** The target as sent. */
  target: string;
  /** Origin-form path and query (or `*`): what the backend sees and what a redirect uses. */
  path: string;
  /** Where the request goes: an absolute-form target's authority, else the Host header (RFC 9112 3.2.2). */
  authority: string;
  /** True when `authority` came from the request target, not from Host. */
  absolute: boolean;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  /** Header names and values as received, in pairs. */
  fields: string[];
  framing: RequestFraming;
  contentLength: number;
  /** The client wants the connection kept after this exchange. */
  keepAlive: boolean;
  /** Connection: upgrade with an Upgrade header: a tunnel if the backend answers 101. */
  upgrade: boolean;
  /**
   * Lower-case header names the Connection header lists (hop-by-hop for this message), except the
   * fields that frame or address it: dropping a listed Content-Length would leave the backend to
   * read the body as the next request (RFC 9112 6.3: framing is the same on every hop).
   */
  connectionTokens: readonly string[];
}

/** Finds `name` (lower case) among the fields; the first value, or undefined. */
export function field(head: { fields: string[] }, name: string): string | undefined {
  const f = head.fields;
  for (let i = 0; i < f.length; i += 2) if (f[i]!.length === name.length && f[i]!.toLowerCase() === name) return f[i + 1];
  return undefined;
}

// A Host value: reg-name or IP literal, optional port; nothing that could smuggle another target.
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::\d*)?$/;

const KNOWN_METHODS = new Set(METHODS);
const COMMON_METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];
/** Most heads have no Connection header: they share this empty list. */
const NO_TOKENS: readonly string[] = Object.freeze([]);
/** Fields a Connection header may not make hop-by-hop (see RequestHead.connectionTokens). */
const NEVER_HOP_BY_HOP = new Set(['content-length', 'transfer-encoding', 'host']);
/** scanFields' output, reused from head to head. */
const spans: number[] = [];

/** The method from `start` to `end`: a common one as its constant (no string made, its hash known), else as read. */
function methodAt(buf: Buffer, start: number, end: number): string {
  for (const m of COMMON_METHODS) {
    if (end - start !== m.length) continue;
    let i = 0;
    while (i < m.length && buf[start + i] === m.charCodeAt(i)) i += 1;
    if (i === m.length) return m;
  }
  return latin1(buf, start, end);
}

function fail(message: string): never {
  return badRequest(message);
}

/**
 * Parses the request head at the start of `buf`. Null when it is not complete yet; otherwise the
 * head and how many bytes it took. Throws HttpError for a head Turbine refuses.
 */
export function parseRequestHead(buf: Buffer, maxHeadBytes: number): { head: RequestHead; length: number } | null {
  let start = 0;
  // RFC 9112 2.2: an empty line before a request line is ignored.
  while (buf[start] === CR && buf[start + 1] === LF) start += 2;
  const end = headEnd(buf, start, fail);
  if (end === -1) {
    if (buf.length > maxHeadBytes) throw new HttpError(431, 'header-too-large', 'request head too large');
    return null;
  }
  if (end + 4 > maxHeadBytes) throw new HttpError(431, 'header-too-large', 'request head too large');
  let p = start;
  while (TCHAR[buf[p]!] === 1) p += 1;
  if (p === start || buf[p] !== SP) fail('invalid method');
  const method = methodAt(buf, start, p);
  // A method llhttp does not know may be framed differently by a backend that parses with it:
  // refused, as llhttp refuses it (501: RFC 9110 9.1 for a method the server does not implement).
  if (!KNOWN_METHODS.has(method)) throw new HttpError(501, 'bad-request', `method not implemented: ${JSON.stringify(method.slice(0, 32))}`);
  const targetStart = (p += 1);
  while (buf[p]! > 0x20 && buf[p]! < 0x7f) p += 1;
  if (p === targetStart || buf[p] !== SP) fail('invalid request target');
  const target = latin1(buf, targetStart, p);
  p += 1;
  if (!http1At(buf, p)) {
    if (buf[p] === 0x48 && buf[p + 1] === 0x54) throw new HttpError(505, 'bad-request', 'HTTP version not supported');
    fail('invalid HTTP version');
  }
  const minor = buf[p + 7]! - 0x30;
  if (buf[p + 8] === LF) fail('bare LF');
  if ((minor !== 0 && minor !== 1) || buf[p + 8] !== CR || buf[p + 9] !== LF) {
    throw new HttpError(505, 'bad-request', 'HTTP version not supported');
  }
  const count = scanFields(buf, p + 10, end + 2, spans, 0, fail);
  const fields = fieldStrings(buf, spans, 0, count);

  let host: string | undefined;
  let hosts = 0;
  let length = -1;
  let codings: string | null = null;
  let connection = '';
  let upgradeHeader = false;
  for (let i = 0; i < count; i += 4) {
    const nameStart = spans[i]!;
    const nameEnd = spans[i + 1]!;
    const value = fields[i / 2 + 1]!;
    // Only the names that decide framing or routing are compared; most headers pass this test on length.
    switch (nameEnd - nameStart) {
      case 4:
        if (bytesAre(buf, nameStart, nameEnd, 'host')) { hosts += 1; host = value; }
        break;
      case 7:
        if (bytesAre(buf, nameStart, nameEnd, 'upgrade')) upgradeHeader = true;
        break;
      case 10:
        if (bytesAre(buf, nameStart, nameEnd, 'connection')) connection = connection === '' ? value : `${connection}, ${value}`;
        break;
      case 14:
        if (bytesAre(buf, nameStart, nameEnd, 'content-length')) {
          if (length !== -1) fail('more than one Content-Length');
          length = contentLength(buf, spans[i + 2]!, spans[i + 3]!, fail);
        }
        break;
      case 17:
        if (bytesAre(buf, nameStart, nameEnd, 'transfer-encoding')) codings = codings === null ? value : `${codings}, ${value}`;
        break;
    }
  }
  if (hosts > 1) fail('more than one Host header');
  if (host === undefined && minor === 1) fail('no Host header');
  if (host !== undefined && !AUTHORITY.test(host)) fail('invalid Host header');

  let framing: RequestFraming = length > 0 ? 'length' : 'none';
  if (codings !== null) {
    if (length !== -1) fail('both Content-Length and Transfer-Encoding');
    framing = chunkedOnly(codings);
  }

  let path = target;
  let authority = host ?? '';
  let absolute = false;
  if (target.charCodeAt(0) !== 0x2f) {
    if (target === '*') {
      if (method !== 'OPTIONS') fail('asterisk-form target on a method other than OPTIONS');
    } else if (method === 'CONNECT') {
      throw new HttpError(405, 'bad-request', 'CONNECT is not served by a reverse proxy');
    } else {
      const absoluteForm = /^https?:\/\/([^/?#@]*)([/?][^#]*)?$/i.exec(target);
      if (absoluteForm === null || !AUTHORITY.test(absoluteForm[1]!) || absoluteForm[1] === '') fail('invalid request target');
      authority = absoluteForm[1]!;
      const rest = absoluteForm[2] ?? '/';
      path = rest.charCodeAt(0) === 0x3f ? `/${rest}` : rest;
      absolute = true;
    }
  }

  const connectionTokens = connection === '' ? NO_TOKENS : connection.toLowerCase().split(',').map(trimOws).filter((t) => t !== '' && !NEVER_HOP_BY_HOP.has(t));
  // Close wins over keep-alive (RFC 9112 9.6), which HTTP/1.0 needs to persist at all.
  const keepAlive = !connectionTokens.includes('close') && (minor === 1 || connectionTokens.includes('keep-alive'));
  const upgrade = minor === 1 && upgradeHeader && connectionTokens.includes('upgrade');
  return {
    head: { method, target, path, authority, absolute, minor, fields, framing, contentLength: Math.max(length, 0), keepAlive, upgrade, connectionTokens },
    length: end + 4,
  };
}

/**
 * Transfer-Encoding on a request: exactly `chunked` is streamed as it is. Any other coding is
 * refused: with `chunked` last, 501 (RFC 9112 6.1: a coding the server does not implement), since
 * Turbine would have to vouch that every backend decodes it; without `chunked` last, the length
 * is unknowable (400).
 */
function chunkedOnly(codings: string): RequestFraming {
  const list = codings.split(',').map((c) => trimOws(c).toLowerCase());
  for (const coding of list) {
    if (coding === '' || ![...coding].every((ch) => TCHAR[ch.charCodeAt(0)] === 1)) fail('invalid Transfer-Encoding');
  }
  if (list[list.length - 1] !== 'chunked') fail('Transfer-Encoding without chunked last');
  if (list.length > 1) {
    if (list.indexOf('chunked') !== list.length - 1) fail('chunked applied more than once');
    throw new HttpError(501, 'unsupported-transfer-coding', `Transfer-Encoding ${codings} is not implemented`);
  }
  return 'chunked';
}
