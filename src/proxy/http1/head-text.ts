// A head written piece by piece into one reused buffer and taken as one flat string. Built with
// `+=`, the head for a backend was a chain of a dozen strings that the socket write then had to
// flatten: 2% of the CPU at 100 B keep-alive, and as many short-lived objects as the rest of the
// request.
import { latin1 } from './syntax.js';

export class HeadText {
  private buf = Buffer.allocUnsafe(4096);
  private n = 0;

  /** Starts a head (what a build cut short by a throw left behind is dropped). */
  begin(): this {
    this.n = 0;
    return this;
  }

  /** Appends `s`, whose characters are latin1 (read from the wire as latin1, or ASCII). */
  add(s: string): this {
    const len = s.length;
    if (this.n + len > this.buf.length) this.grow(this.n + len);
    const buf = this.buf;
    let n = this.n;
    // Byte by byte: heads are short pieces, and a call into C++ per piece costs more than the copy.
    for (let i = 0; i < len; i += 1) buf[n++] = s.charCodeAt(i);
    this.n = n;
    return this;
  }

  /** The text added since the last take, as one string; starts over. */
  take(): string {
    const text = latin1(this.buf, 0, this.n);
    this.n = 0;
    return text;
  }

  private grow(need: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
    this.buf.copy(bigger, 0, 0, this.n);
    this.buf = bigger;
  }
}
