// Small writes made while the event loop handles one round of I/O wait for the end of that round
// and then leave together, as HAProxy's do (its I/O handlers read and wake tasks; the sends come
// after them). Written at once, the answer to each read woke its peer process (a client, a
// backend) on its own; written after the round, a round's answers reach a peer together. Waiting
// bytes are not copied (a copy of each answer cost half of what waiting gained): a read buffer
// they are a view of is not read into again until the flush after them (read-buffer.ts). A large
// write goes at once, after whatever its socket had waiting, and so does any
// write while the kernel holds bytes back: libuv queues it in order and the writer hears false,
// so backpressure works as without the batch.

/** Writes up to this size wait for the end of the turn; a larger one is a bulk transfer's, which gains nothing by waiting. */
export const BATCHED_BYTES = 4096;

/** Where a batch's bytes go: one piece, or several in one writev. True when the kernel took them all. */
export type Sink = (data: Buffer | string | Buffer[]) => boolean;

/** Batches with bytes waiting, flushed in the check phase that follows the poll phase. */
const due: TurnBatch[] = [];
let flushes = 0;

function flushDue(): void {
  for (let i = 0; i < due.length; i += 1) due[i]!.flush();
  due.length = 0;
  flushes += 1;
}

/** How many ends of turn have flushed: bytes that waited when this said n are out of their batch once it says more. */
export function batchFlushes(): number {
  return flushes;
}

/** One socket's small writes waiting for the end of the turn. */
export class TurnBatch {
  /** The first piece waiting (most turns have one per socket), then any more. */
  private first: Buffer | string | null = null;
  private more: (Buffer | string)[] | null = null;

  /** `backedUp`: the kernel holds bytes of an earlier write back (libuv has them queued). */
  constructor(private readonly sink: Sink, private readonly backedUp: () => boolean) {}

  /** Pieces wait for the end of the turn. */
  get waiting(): boolean {
    return this.first !== null;
  }

  /**
   * Small data waits; other data goes now, after what waits. The sink's answer, or true when it
   * waits. `data` must stay unchanged until it is out: flushed, and taken by the kernel.
   */
  write(data: Buffer | string): boolean {
    if (data.length > BATCHED_BYTES || this.backedUp()) {
      if (this.first === null) return this.sink(data);
      (this.more ??= []).push(data);
      return this.flush();
    }
    if (this.first === null) {
      this.first = data;
      if (due.push(this) === 1) setImmediate(flushDue);
    } else (this.more ??= []).push(data);
    return true;
  }

  /** Sends what waits now (before a shutdown, or at the end of the turn). */
  flush(): boolean {
    const first = this.first;
    if (first === null) return true;
    const more = this.more;
    this.first = null;
    this.more = null;
    if (more === null) return this.sink(first);
    const pieces = [first, ...more].map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p));
    return this.sink(pieces);
  }

  /** Forgets what waits (the socket is gone). */
  drop(): void {
    this.first = null;
    this.more = null;
  }
}
