// Heads for backends, written piece by piece into a shared slab and handed out as views of it.
// Built with `+=`, a head was a chain of a dozen strings that the socket write then had to
// flatten: 2% of the CPU at 100 B keep-alive, and as many short-lived objects as the rest of the
// request. As bytes, a head also goes to the socket without a string made from them and copied
// back into bytes by the write.
const SLAB_BYTES = 16 * 1024;

export class HeadText {
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  /** Where the head being built starts: what lies before it was handed out and is never written again. */
  private start = 0;
  private n = 0;

  /** Starts a head (what a build cut short by a throw left behind is dropped). */
  begin(): this {
    this.n = this.start;
    return this;
  }

  /** Appends `s`, whose characters are latin1 (read from the wire as latin1, or ASCII). */
  add(s: string): this {
    const len = s.length;
    if (this.n + len > this.slab.length) this.moveTo(len);
    const slab = this.slab;
    let n = this.n;
    // Byte by byte: heads are short pieces, and a call into C++ per piece costs more than the copy.
    for (let i = 0; i < len; i += 1) slab[n++] = s.charCodeAt(i);
    this.n = n;
    return this;
  }

  /** Appends bytes made once (a listener's fixed fields): one copy, not a loop over characters. */
  addBytes(bytes: Uint8Array): this {
    if (this.n + bytes.length > this.slab.length) this.moveTo(bytes.length);
    this.slab.set(bytes, this.n);
    this.n += bytes.length;
    return this;
  }

  /** The bytes added since the last take; they stay as they are while the view lives. */
  take(): Buffer {
    const head = this.slab.subarray(this.start, this.n);
    this.start = this.n;
    return head;
  }

  /** A new slab, with the head so far at its start: the old one belongs to the heads handed out from it. */
  private moveTo(more: number): void {
    const sofar = this.n - this.start;
    const next = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, 2 * (sofar + more)));
    this.slab.copy(next, 0, this.start, this.n);
    this.slab = next;
    this.start = 0;
    this.n = sofar;
  }
}
