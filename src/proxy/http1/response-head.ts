// A backend's response head, read for what the proxy must know: status, framing, and whether the
// connection can be reused. Anything ambiguous is the backend's fault (a 502), never guessed at.
import { CR, HttpError, LF, SP, contentLength, hasToken, headEnd, parseFields, trimOws } from './syntax.js';

/** How the response body ends: not at all, after a length, at the last chunk, or when the backend closes. */
export type ResponseFraming = 'none' | 'length' | 'chunked' | 'close';

export interface ResponseHead {
  status: number;
  reason: string;
  minor: number;
  fields: string[];
  framing: ResponseFraming;
  contentLength: number;
  /** The backend keeps the connection after this response. */
  keepAlive: boolean;
}

function fail(message: string): never {
  throw new HttpError(502, 'bad-response', message);
}

/** The response head at the start of `buf`, or null when incomplete. `head`: the request was HEAD. */
export function parseResponseHead(buf: Buffer, maxHeadBytes: number, head: boolean): { head: ResponseHead; length: number } | null {
  const end = headEnd(buf, 0, fail);
  if (end === -1) {
    if (buf.length > maxHeadBytes) fail('response head too large');
    return null;
  }
  // "HTTP/1.x NNN" then SP reason or nothing.
  if (buf.toString('latin1', 0, 7) !== 'HTTP/1.' || buf[8] !== SP) fail('invalid status line');
  const minor = buf[7]! - 0x30;
  if (minor !== 0 && minor !== 1) fail('unsupported HTTP version');
  let status = 0;
  for (let i = 9; i < 12; i += 1) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) fail('invalid status code');
    status = status * 10 + d;
  }
  if (status < 100) fail('invalid status code');
  let p = 12;
  if (buf[p] === SP) p += 1;
  else if (buf[p] !== CR) fail('invalid status code');
  const reasonStart = p;
  while (buf[p] !== CR) {
    const b = buf[p]!;
    if ((b < 0x20 && b !== 9) || b === 0x7f || b === LF) fail('control character in the reason phrase');
    p += 1;
  }
  const reason = buf.toString('latin1', reasonStart, p);
  const fields: string[] = [];
  parseFields(buf, p + 2, end + 2, fields, fail);

  let length = -1;
  let codings: string | null = null;
  let connection = '';
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    if (name.length === 14 && name.toLowerCase() === 'content-length') {
      const value = contentLength(fields[i + 1]!, fail);
      if (length !== -1 && length !== value) fail('conflicting Content-Length');
      length = value;
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      codings = codings === null ? fields[i + 1]! : `${codings}, ${fields[i + 1]}`;
    } else if (name.length === 10 && name.toLowerCase() === 'connection') {
      connection = connection === '' ? fields[i + 1]! : `${connection}, ${fields[i + 1]}`;
    }
  }
  if (codings !== null && length !== -1) fail('both Content-Length and Transfer-Encoding');
  let keepAlive = minor === 1 ? !hasToken(connection, 'close') : hasToken(connection, 'keep-alive');
  let framing: ResponseFraming;
  if (head || status < 200 || status === 204 || status === 304) framing = 'none';
  else if (codings !== null) {
    // RFC 9112 6.3: chunked last frames the body; any other final coding runs until close.
    const last = trimOws(codings.slice(codings.lastIndexOf(',') + 1)).toLowerCase();
    framing = last === 'chunked' ? 'chunked' : 'close';
  } else if (length !== -1) framing = length === 0 ? 'none' : 'length';
  else framing = 'close';
  if (framing === 'close') keepAlive = false;
  return { head: { status, reason, minor, fields, framing, contentLength: Math.max(length, 0), keepAlive }, length: end + 4 };
}
