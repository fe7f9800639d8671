// Where a message body ends, found without changing a byte: a countdown for Content-Length, a
// small state machine over chunk sizes, extensions and trailers for chunked. The proxy forwards
// the bytes as they came (no re-chunking) and learns where the next message starts; for a client
// that cannot read chunked (HTTP/1.0), a sink receives the chunk data alone.
import { CR, HEX, HttpError, LF, TCHAR } from './syntax.js';

/** Where a chunk extension is: `;` name [ `=` ( token | quoted-string ) ], RFC 9112 7.1.1, no white space. */
const enum Ext { NameStart, Name, ValueStart, Value, Quoted, Closed }
const enum State { Size, Ext, SizeLf, Data, DataCr, DataLf, TrailerStart, TrailerName, Trailer, TrailerLf, EndLf, Done }

/** Receives the bytes `buf[start, end)` of a chunked body's data, without its framing. */
export type ChunkDataSink = (buf: Buffer, start: number, end: number) => void;

/**
 * A size at or above this cannot take another hex digit: more than 12 significant digits is a chunk
 * size no one means (and an overflow in some parsers). Leading zeros do not count (llhttp and
 * HAProxy take them).
 */
const MAX_SIZE_BEFORE_DIGIT = 16 ** 11;
const MAX_TRAILER_BYTES = 16 * 1024;

export class BodyFramer {
  private state = State.Done;
  private remaining = 0;
  private digits = 0;
  private trailerBytes = 0;
  private ext = Ext.NameStart;
  private chunked = false;

  /** Starts a body: `length` bytes, or chunked when `chunked`. A length of 0 is an empty body. */
  reset(chunked: boolean, length: number): void {
    this.chunked = chunked;
    this.remaining = chunked ? 0 : length;
    this.digits = 0;
    this.trailerBytes = 0;
    this.state = chunked ? State.Size : length > 0 ? State.Data : State.Done;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * How many bytes of `buf` from `from` belong to this body (the rest is the next message).
   * Throws HttpError (`status`) on malformed chunked framing. With `sink`, a chunked body's data
   * (not its sizes, extensions or trailers) is handed to it as it is found.
   */
  feed(buf: Buffer, from: number, status: number, sink?: ChunkDataSink): number {
    if (!this.chunked) {
      const take = Math.min(this.remaining, buf.length - from);
      this.remaining -= take;
      if (this.remaining === 0) this.state = State.Done;
      return take;
    }
    let p = from;
    const end = buf.length;
    while (p < end && this.state !== State.Done) {
      const b = buf[p]!;
      switch (this.state) {
        case State.Size: {
          const v = HEX[b]!;
          if (v >= 0) {
            this.digits += 1;
            if (this.remaining >= MAX_SIZE_BEFORE_DIGIT) this.fail(status, 'chunk size too large');
            this.remaining = this.remaining * 16 + v;
          } else if (this.digits === 0) this.fail(status, 'invalid chunk size');
          else if (b === 0x3b) this.state = State.Ext;
          else if (b === CR) this.state = State.SizeLf;
          else this.fail(status, 'invalid chunk size');
          p += 1;
          break;
        }
        case State.Ext:
          // Exactly the grammar, without the optional white space: stricter than llhttp, so no
          // backend reads these bytes another way. A quoted value holds visible ASCII, no escapes.
          switch (this.ext) {
            case Ext.NameStart:
              if (TCHAR[b] !== 1) this.fail(status, 'invalid chunk extension');
              this.ext = Ext.Name;
              break;
            case Ext.ValueStart:
              if (b === 0x22) this.ext = Ext.Quoted;
              else if (TCHAR[b] === 1) this.ext = Ext.Value;
              else this.fail(status, 'invalid chunk extension');
              break;
            case Ext.Quoted:
              if (b === 0x22) this.ext = Ext.Closed;
              else if (b === 0x5c || (b < 0x20 && b !== 9) || b > 0x7e) this.fail(status, 'invalid quoted chunk extension');
              break;
            default: // after a name, a token value or a closing quote
              if (b === CR) this.state = State.SizeLf;
              else if (b === 0x3b) this.ext = Ext.NameStart;
              else if (b === 0x3d && this.ext === Ext.Name) this.ext = Ext.ValueStart;
              else if (TCHAR[b] !== 1 || this.ext === Ext.Closed) this.fail(status, 'invalid chunk extension');
          }
          p += 1;
          break;
        case State.SizeLf:
          this.ext = Ext.NameStart;
          if (b !== LF) this.fail(status, 'CR without LF after a chunk size');
          p += 1;
          this.digits = 0;
          this.state = this.remaining === 0 ? State.TrailerStart : State.Data;
          break;
        case State.Data: {
          const take = Math.min(this.remaining, end - p);
          if (sink !== undefined) sink(buf, p, p + take);
          this.remaining -= take;
          p += take;
          if (this.remaining === 0) this.state = State.DataCr;
          break;
        }
        case State.DataCr:
          if (b !== CR) this.fail(status, 'chunk data longer than its size');
          p += 1;
          this.state = State.DataLf;
          break;
        case State.DataLf:
          if (b !== LF) this.fail(status, 'CR without LF after chunk data');
          p += 1;
          this.state = State.Size;
          break;
        case State.TrailerStart:
          if (b === CR) this.state = State.EndLf;
          else if (TCHAR[b] === 1) this.state = State.TrailerName;
          else this.fail(status, 'invalid trailer field');
          p += 1;
          break;
        case State.TrailerName:
          // A trailer is a field like any header (token ":" value): a request line here is not one,
          // and a backend that parses trailers strictly would draw the request's end elsewhere.
          if (b === 0x3a) this.state = State.Trailer;
          else if (TCHAR[b] !== 1) this.fail(status, 'invalid trailer field name');
          if ((this.trailerBytes += 1) > MAX_TRAILER_BYTES) this.fail(status, 'trailer fields too large');
          p += 1;
          break;
        case State.Trailer:
          if (b === CR) this.state = State.TrailerLf;
          else if ((b < 0x20 && b !== 9) || b === 0x7f) this.fail(status, 'control character in a trailer field');
          if ((this.trailerBytes += 1) > MAX_TRAILER_BYTES) this.fail(status, 'trailer fields too large');
          p += 1;
          break;
        case State.TrailerLf:
          if (b !== LF) this.fail(status, 'CR without LF in a trailer field');
          p += 1;
          this.state = State.TrailerStart;
          break;
        case State.EndLf:
          if (b !== LF) this.fail(status, 'CR without LF after the last chunk');
          p += 1;
          this.state = State.Done;
          break;
      }
    }
    return p - from;
  }

  private fail(status: number, message: string): never {
    throw new HttpError(status, status === 400 ? 'bad-request' : 'bad-response', message);
  }
}
