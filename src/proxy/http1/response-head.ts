// A backend's response head, read for what the proxy must know: status, framing, and whether the
// connection can be reused. Anything ambiguous is the backend's fault (a 502), never guessed at.
import { CR, HttpError, LF, SP, bytesAre, contentLength, fieldStrings, hasToken, headEnd, http1At, latin1, scanFields, trimOws } from './syntax.js';

/** How the response body ends: not at all, after a length, at the last chunk, or when the backend closes. */
export type ResponseFraming = 'none' | 'length' | 'chunked' | 'close';

export interface ResponseHead {
  status: number;
  minor: number;
  framing: ResponseFraming;
  contentLength: number;
  /** The backend keeps the connection after this response. */
  keepAlive: boolean;
  /**
   * The head cannot go out as it came: a hop-by-hop field (RFC 9110 7.6.1) other than
   * `Connection: keep-alive` is there, Content-Length is repeated, or a 204 carries framing fields.
   */
  hopByHop: boolean;
  /** Which parse made it: its fields' places are the parser's until the next one (responseText). */
  parse: number;
  /** How many places its reason phrase and fields took in the parser's array. */
  spanCount: number;
}

/**
 * The reason phrase and the fields (name, value pairs) of a response head parsed from `buf`. Most
 * responses go out as they came and never need these strings, so they are made only on demand,
 * from the same bytes, before the read that held them is overwritten and before another head is
 * parsed.
 */
export function responseText(buf: Buffer, res: ResponseHead): { reason: string; fields: string[] } {
  if (res.parse !== parses) throw new Error('a response head\'s text was asked for after another head was parsed');
  return { reason: latin1(buf, spans[0]!, spans[1]!), fields: fieldStrings(buf, spans, 2, res.spanCount) };
}

/** scanFields' output, reused from head to head: where the last head's reason phrase and fields lie. */
const spans: number[] = [];
let parses = 0;

function fail(message: string): never {
  throw new HttpError(502, 'bad-response', message);
}

/** The response head at the start of `buf`, or null when incomplete. `head`: the request was HEAD. */
export function parseResponseHead(buf: Buffer, maxHeadBytes: number, head: boolean): { head: ResponseHead; length: number } | null {
  const end = headEnd(buf, 0, fail);
  // The limit holds however the head was cut into reads.
  if (end === -1 ? buf.length > maxHeadBytes : end + 4 > maxHeadBytes) fail('response head too large');
  if (end === -1) return null;
  // "HTTP/1.x NNN" then SP reason or nothing.
  if (!http1At(buf, 0) || buf[8] !== SP) fail('invalid status line');
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
  if (buf[p + 1] !== LF) fail('CR without LF');
  spans[0] = reasonStart;
  spans[1] = p;
  const spanCount = scanFields(buf, p + 2, end + 2, spans, 2, fail);

  let length = -1;
  let codings: string | null = null;
  let connection = '';
  // `Connection: keep-alive`, the usual value, is known from its bytes: no string made.
  let keepAliveToken = false;
  let hopByHop = false;
  for (let i = 2; i < spanCount; i += 4) {
    const nameStart = spans[i]!;
    const nameEnd = spans[i + 1]!;
    const valueStart = spans[i + 2]!;
    const valueEnd = spans[i + 3]!;
    switch (nameEnd - nameStart) {
      case 7:
        if (bytesAre(buf, nameStart, nameEnd, 'upgrade')) hopByHop = true;
        break;
      case 10:
        if (bytesAre(buf, nameStart, nameEnd, 'connection')) {
          // Connection: keep-alive says to the client what its connection already is.
          if (bytesAre(buf, valueStart, valueEnd, 'keep-alive')) keepAliveToken = true;
          else {
            hopByHop = true;
            const value = latin1(buf, valueStart, valueEnd);
            connection = connection === '' ? value : `${connection}, ${value}`;
          }
        } else if (bytesAre(buf, nameStart, nameEnd, 'keep-alive')) hopByHop = true;
        break;
      case 14:
        if (bytesAre(buf, nameStart, nameEnd, 'content-length')) {
          const value = contentLength(buf, valueStart, valueEnd, fail);
          if (length !== -1 && length !== value) fail('conflicting Content-Length');
          // The same length twice is one length (RFC 9110 8.6), sent once: llhttp refuses the repeat.
          if (length !== -1) hopByHop = true;
          length = value;
        }
        break;
      case 16:
        if (bytesAre(buf, nameStart, nameEnd, 'proxy-connection')) hopByHop = true;
        break;
      case 17:
        if (bytesAre(buf, nameStart, nameEnd, 'transfer-encoding')) {
          const value = latin1(buf, valueStart, valueEnd);
          codings = codings === null ? value : `${codings}, ${value}`;
        }
        break;
    }
  }
  if (codings !== null && length !== -1) fail('both Content-Length and Transfer-Encoding');
  // A 204 has no body and no framing fields (RFC 9110 8.6, RFC 9112 6.1): a client that believed them would wait for a body.
  if (status === 204 && (codings !== null || length !== -1)) hopByHop = true;
  // Close wins over keep-alive (RFC 9112 9.6), which HTTP/1.0 needs to persist at all.
  let keepAlive = !hasToken(connection, 'close') && (minor === 1 || keepAliveToken || hasToken(connection, 'keep-alive'));
  let framing: ResponseFraming;
  if (head || status < 200 || status === 204 || status === 304) framing = 'none';
  else if (codings !== null) {
    // RFC 9112 6.3: chunked last frames the body; any other final coding runs until close.
    const last = trimOws(codings.slice(codings.lastIndexOf(',') + 1)).toLowerCase();
    framing = last === 'chunked' ? 'chunked' : 'close';
  } else if (length !== -1) framing = length === 0 ? 'none' : 'length';
  else framing = 'close';
  // An HTTP/1.0 message has no Transfer-Encoding: its framing is faulty, and the connection ends after it (RFC 9112 6.1).
  if (framing === 'close' || (minor === 0 && codings !== null)) keepAlive = false;
  return { head: { status, minor, framing, contentLength: Math.max(length, 0), keepAlive, hopByHop, parse: ++parses, spanCount }, length: end + 4 };
}
