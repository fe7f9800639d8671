// Byte classes of RFC 9110/9112, as lookup tables: the parsers test one byte with one array read.
export const CR = 13;
export const LF = 10;
export const SP = 32;
export const HTAB = 9;
export const COLON = 58;

/** tchar: the bytes of a token (method, header name, transfer coding). */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c += 1) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c += 1) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c += 1) TCHAR[c] = 1;

/** field-vchar, SP and HTAB (obs-text allowed): what a header value may hold. Every other control byte is refused. */
export const FIELD_CHAR = new Uint8Array(256);
for (let c = 0x20; c <= 0xff; c += 1) FIELD_CHAR[c] = 1;
FIELD_CHAR[0x7f] = 0;
FIELD_CHAR[HTAB] = 1;

/** Hex digit values, -1 elsewhere. */
export const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c += 1) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c += 1) { HEX[0x41 + c] = 10 + c; HEX[0x61 + c] = 10 + c; }

/** A message Turbine refuses: the status to answer with, and a reason for the client-error metric. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(readonly status: number, readonly reason: string, message: string) {
    super(message);
  }
}

export function badRequest(message: string): never {
  throw new HttpError(400, 'bad-request', message);
}

/** `buf`'s bytes from `start` to `end` as a latin1 string, without the two JS layers of toString (2% of the CPU at 100 B). */
export function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as Buffer & { latin1Slice(start: number, end: number): string }).latin1Slice(start, end);
}

/** Whether `HTTP/1.` starts at `at` (compared here: a call into C++ costs more than seven bytes). */
export function http1At(buf: Buffer, at: number): boolean {
  return buf[at] === 0x48 && buf[at + 1] === 0x54 && buf[at + 2] === 0x54 && buf[at + 3] === 0x50 && buf[at + 4] === 0x2f && buf[at + 5] === 0x31 && buf[at + 6] === 0x2e;
}

/** Whether the bytes from `start` to `end` are `lower` (lower-case letters and '-') in any case; no string is made. */
export function bytesAre(buf: Buffer, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  // | 0x20 folds A-Z onto a-z and leaves '-' alone; no other token byte folds onto a letter or '-'.
  for (let i = 0; i < lower.length; i += 1) if ((buf[start + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/**
 * Header lines from `p` to `end` (the CRLF ending the last line), checked, their places written
 * to `spans` from index `at` as [nameStart, nameEnd, valueStart, valueEnd] (the value without its
 * white space); returns the index after the last. `spans` is the parser's own, reused from head
 * to head and never shortened (a new or emptied array reallocated as it grew: a third of what a
 * response cost the young generation). Throws on a bad line. No string is made: the caller makes
 * the ones it needs.
 */
export function scanFields(buf: Buffer, p: number, end: number, spans: number[], at: number, fail: (message: string) => never): number {
  while (p < end) {
    const start = p;
    while (TCHAR[buf[p]!] === 1) p += 1;
    if (p === start) fail(buf[p] === SP || buf[p] === HTAB ? 'obsolete line folding' : 'invalid header name');
    if (buf[p] !== COLON) fail('invalid header name');
    const nameEnd = p;
    p += 1;
    while (buf[p] === SP || buf[p] === HTAB) p += 1;
    const valueStart = p;
    for (;;) {
      const b = buf[p]!;
      if (b === CR) {
        if (buf[p + 1] !== LF) fail('CR without LF');
        break;
      }
      if (FIELD_CHAR[b] !== 1) fail(b === LF ? 'bare LF' : 'control character in a header value');
      p += 1;
    }
    let valueEnd = p;
    let trailingTab = false;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) {
      if (buf[valueEnd - 1] === HTAB) trailingTab = true;
      valueEnd -= 1;
    }
    // llhttp allows only SP after a Content-Length's digits (differential seed 473970, input 2087).
    if (trailingTab && bytesAre(buf, start, nameEnd, 'content-length')) fail('invalid Content-Length');
    spans[at] = start;
    spans[at + 1] = nameEnd;
    spans[at + 2] = valueStart;
    spans[at + 3] = valueEnd;
    at += 4;
    p += 2;
  }
  return at;
}

/** Names and values of `spans` from `from` to `to` (as scanFields leaves them) as flat string pairs. */
export function fieldStrings(buf: Buffer, spans: readonly number[], from: number, to: number): string[] {
  const out = new Array<string>((to - from) / 2);
  for (let i = from, o = 0; i < to; i += 4, o += 2) {
    out[o] = latin1(buf, spans[i]!, spans[i + 1]!);
    out[o + 1] = latin1(buf, spans[i + 2]!, spans[i + 3]!);
  }
  return out;
}

/** A Content-Length value (the bytes from `start` to `end`): digits only, one value (a list or a repeat is refused, as llhttp does). */
export function contentLength(buf: Buffer, start: number, end: number, fail: (message: string) => never): number {
  // Up to 15 significant digits (a safe integer); leading zeros do not count, as in llhttp and HAProxy.
  let first = start;
  while (first < end - 1 && buf[first] === 0x30) first += 1;
  if (end === start || end - first > 15) fail('invalid Content-Length');
  let n = 0;
  for (let i = first; i < end; i += 1) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) fail('invalid Content-Length');
    n = n * 10 + d;
  }
  return n;
}

const isOws = (c: number): boolean => c === 0x20 || c === 0x09;

/**
 * `s` without its optional white space (RFC 9110 5.6.3: SP and HTAB only). Not String.trim: that
 * also strips NBSP (0xA0) and other Unicode spaces, so `Transfer-Encoding: \xa0chunked` read as
 * chunked while llhttp refuses it (the 100,000-input differential, seed 457183, input 97605).
 */
export function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isOws(s.charCodeAt(start))) start += 1;
  while (end > start && isOws(s.charCodeAt(end - 1))) end -= 1;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** Whether a comma-separated header value holds `token` (case-insensitive; `token` lower case). */
export function hasToken(value: string, token: string): boolean {
  const lower = value.toLowerCase();
  let from = 0;
  for (;;) {
    const at = lower.indexOf(token, from);
    if (at === -1) return false;
    const before = trimOws(lower.slice(0, at));
    const after = trimOws(lower.slice(at + token.length));
    if ((before === '' || before.endsWith(',')) && (after === '' || after.startsWith(','))) return true;
    from = at + 1;
  }
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/**
 * Position of the CRLFCRLF ending a head at or after `from`, or -1; an incomplete head with a bare
 * LF throws. In a complete head a bare LF is the line readers' to refuse: every byte class they
 * accept leaves LF out, and each line must end in CR LF (a second pass over the head here was 1%
 * of the CPU at 100 B keep-alive).
 */
export function headEnd(buf: Buffer, from: number, fail: (message: string) => never): number {
  const end = buf.indexOf(CRLFCRLF, from);
  if (end === -1) {
    // A bare LF would otherwise hold the connection until the head timeout: refuse it now.
    for (let lf = buf.indexOf(LF, from); lf !== -1; lf = buf.indexOf(LF, lf + 1)) if (lf === from || buf[lf - 1] !== CR) fail('bare LF');
  }
  return end;
}
