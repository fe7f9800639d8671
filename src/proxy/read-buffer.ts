// Reads land in buffers reused from read to read instead of a fresh allocation each time (Node's
// default): at bulk rates the per-read buffers cost more CPU in allocation and garbage collection
// than the forwarding itself (64 KiB responses: 6.5k to 11k req/s on one core), and for small
// requests the allocation is a fair part of each read.
import type { Socket } from 'node:net';
import { RawSocket, type ClientSocket } from './raw-socket.js';
import { isTls, writePending } from './socket-write.js';
import { batchFlushes } from './turn-batch.js';

/** One read's worth: libuv's default, so a bulk response moves in few syscalls (16 KiB measured 25% slower). */
const READ_BUFFER_BYTES = 64 * 1024;
/**
 * A backend connection starts with a smaller buffer, and gets the full one at its first read that
 * fills it: a connection that only ever carries small answers (most API traffic) holds 16 KiB for
 * its life, idle in the pool included, not 64.
 */
const FIRST_READ_BUFFER_BYTES = 16 * 1024;

/** Node's `onread` option, typed as this module fills it, and the same for a RawSocket. */
export interface ReusedReads {
  /** Asked after every read; a buffer (the first call, or a fresh one) replaces the one read into, undefined keeps it. */
  buffer: () => Buffer;
  callback: (bytes: number, buffer: Uint8Array) => boolean;
  /** A RawSocket's read: a view of the buffer last given, from its start. */
  read: (chunk: Buffer) => void;
  /** Lets the spare buffer go (a connection at rest keeps one buffer, not two). */
  dropSpare(): void;
}

/**
 * For a backend socket (a RawSocket, or `net.connect({ onread })`) whose bytes are written to `writesTo()` (null:
 * nobody's). `onBytes` gets each read as a view of the socket's buffer, which the next read
 * overwrites. While a write to that socket still holds the view (it waits for the end of the turn,
 * or the kernel did not take it at once), the next read goes to another buffer: the one a write
 * held before, once that write is out, else a fresh one; the held one is kept as that spare. A TLS socket
 * takes every write asynchronously, so a view written to it would always be held and each read
 * would need a fresh 64 KiB buffer (the HTTPS row fell from 0.58x to 0.33x HAProxy under the
 * garbage collection that caused): what goes to one is copied, at the size of the read.
 */
export function reusedReadBuffer(onBytes: (chunk: Buffer) => void, writesTo: () => ClientSocket | null): ReusedReads {
  let buffer: Buffer | null = null;
  /** Who a write still holding `buffer` went to; null when nothing holds it. */
  let heldBy: ClientSocket | null = null;
  /** When the write waits in heldBy's turn batch: batchFlushes() then (out of the batch once it has moved on); else -1. */
  let heldInBatch = -1;
  /**
   * The buffer a write held before this one, and its writer. Writes leave in order, so once that
   * writer has nothing pending the spare is free again: a reader that is always behind (the slow
   * reader's download) alternates between two buffers instead of allocating 64 KiB a read.
   */
  let spare: Buffer | null = null;
  let spareBy: ClientSocket | null = null;
  let spareInBatch = -1;
  let size = FIRST_READ_BUFFER_BYTES;
  const read = (chunk: Buffer) => {
    // Taken before onBytes: the bytes go where the owner at this read writes them.
    const to = writesTo();
    // The spare's write has left its batch (or never waited in one: -1) and nothing is pending at
    // its writer: it is out, and the spare is free (checked before this read's write).
    if (spareBy !== null && spareInBatch !== batchFlushes() && !writePending(spareBy)) spareBy = null;
    // A read that filled the buffer: bulk is coming, and the next buffer is a full one.
    if (chunk.length === buffer!.length) size = READ_BUFFER_BYTES;
    if (to !== null && isTls(to)) {
      onBytes(Buffer.from(chunk));
      return;
    }
    onBytes(chunk);
    heldBy = to;
    if (to instanceof RawSocket && to.batched) heldInBatch = batchFlushes();
    else if (to !== null && writePending(to)) heldInBatch = -1;
    else heldBy = null;
  };
  return {
    buffer: () => {
      // Handing back the same buffer would make Node set it on the handle again, in C++, at every read.
      if (buffer !== null && heldBy === null && buffer.length === size) return undefined as unknown as Buffer;
      const next = spare !== null && spareBy === null && spare.length === size ? spare : Buffer.allocUnsafe(size);
      spare = buffer;
      spareBy = heldBy;
      spareInBatch = heldInBatch;
      buffer = next;
      heldBy = null;
      return buffer;
    },
    callback: (bytes, view) => {
      read((view as Buffer).subarray(0, bytes));
      return true;
    },
    read,
    dropSpare: () => {
      spare = null;
      spareBy = null;
    },
  };
}

/**
 * Client connections are many and mostly idle, so they share one buffer: a read is handled before
 * the next one starts, and whoever keeps bytes of it beyond that (a pipelined request, a body on
 * its way to a backend) keeps a copy (`owned`).
 */
const shared = Buffer.allocUnsafe(READ_BUFFER_BYTES);

/** The buffer a RawSocket reads into: the shared one. */
export function clientReadBuffer(): Buffer {
  return shared;
}

/** `chunk`, or a copy of it when it is a view of the shared client read buffer. */
export function owned(chunk: Buffer): Buffer {
  return chunk.buffer === shared.buffer ? Buffer.from(chunk) : chunk;
}

type Hooks = Record<symbol, unknown>;
interface HookSymbols { kBuffer: symbol; kBufferCb: symbol; kBufferGen: symbol }

/** The same symbols on every socket of this Node: looked up once; false when it has not got them. */
let symbols: HookSymbols | false | undefined;

function hookSymbols(socket: Socket): HookSymbols | false {
  const own = Object.getOwnPropertySymbols(socket);
  const hook = (name: string) => own.find((s) => s.description === name);
  const [kBuffer, kBufferCb, kBufferGen] = [hook('kBuffer'), hook('kBufferCb'), hook('kBufferGen')];
  return kBuffer && kBufferCb && kBufferGen ? { kBuffer, kBufferCb, kBufferGen } : false;
}

/**
 * Makes an accepted socket (plain or TLS) read into the shared buffer, handing each read to `onBytes`
 * (a RawSocket reads into it from the start).
 * `net.Server` has no `onread` option, so this sets what `net.connect({ onread })` would: Node's
 * own user-buffer hooks (lib/net.js). False when this Node has not got them: the caller then
 * listens to 'data' as usual.
 */
export function readIntoSharedBuffer(socket: ClientSocket, onBytes: (chunk: Buffer) => void): boolean {
  if (socket instanceof RawSocket) {
    socket.onBytes = onBytes;
    return true;
  }
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buffer: Uint8Array) => void } })._handle;
  // A TLS socket's handle hands over its decrypted bytes the same way (+2-4% on HTTPS in one A/B run).
  if (typeof handle?.useUserBuffer !== 'function') return false;
  symbols ??= hookSymbols(socket);
  if (symbols === false) return false;
  const { kBuffer, kBufferCb, kBufferGen } = symbols;
  const hooks = socket as unknown as Hooks;
  hooks[kBuffer] = shared;
  hooks[kBufferGen] = null;
  hooks[kBufferCb] = (bytes: number) => {
    onBytes(shared.subarray(0, bytes));
    return true;
  };
  handle.useUserBuffer(shared);
  return true;
}
