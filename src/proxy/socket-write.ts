// Writes straight to a socket's libuv handle when nothing is queued ahead of them. socket.write
// goes through the Writable state machine, the socket's timer and a write request object made for
// every call; at 100 B keep-alive that was 5% of the CPU for two writes a request that the kernel
// takes at once. A write the kernel does not take whole is left to libuv (which keeps writes in
// order) and reported like a full Writable: false now, 'drain' once it is out. Turbine's HTTP
// timeouts are its own (ClientConnection), so no socket timer is skipped. Anything unusual (a
// socket still connecting, corked, with Writable chunks queued, or a Node without these internals)
// and TLS sockets take socket.write.
import { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import type { ClientSocket } from './raw-socket.js';

interface WriteRequest {
  handle?: StreamHandle;
  owner?: WriteOwner | null;
  buffer?: Buffer | string | Buffer[] | null;
  oncomplete?: (this: WriteRequest, status: number) => void;
}

/** The libuv stream handle under a socket (Node's StreamBase), as far as this module and RawSocket use it. */
export interface StreamHandle {
  writeQueueSize: number;
  writeBuffer(req: WriteRequest, data: Buffer): number;
  writeLatin1String(req: WriteRequest, data: string): number;
  writev(req: WriteRequest, chunks: Buffer[], allBuffers: true): number;
}

/** Whoever a handle's write reports to: its socket. */
interface WriteOwner {
  destroy(err?: Error): void;
  emit(event: 'drain'): boolean;
}

/** Node's stream_wrap binding, as far as this module and RawSocket use it. */
export interface StreamWrap {
  WriteWrap: new () => WriteRequest;
  ShutdownWrap: new () => { handle?: unknown; oncomplete?: (status: number) => void };
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
  kReadBytesOrError: number;
}

/** Node's stream_wrap binding (public through process.binding's allow list), or null without what Turbine uses. */
function streamWrap(): StreamWrap | null {
  try {
    const binding = (process as unknown as { binding(name: string): Partial<StreamWrap> }).binding('stream_wrap');
    const ok = typeof binding.WriteWrap === 'function' && typeof binding.ShutdownWrap === 'function' && binding.streamBaseState instanceof Int32Array
      && typeof binding.kLastWriteWasAsync === 'number' && typeof binding.kReadBytesOrError === 'number';
    return ok ? binding as StreamWrap : null;
  } catch {
    return null;
  }
}

export const streamBinding = streamWrap();
/** A write request is needed only when the kernel does not take the bytes at once: one is kept ready and replaced when used. */
let spare: WriteRequest | null = streamBinding === null ? null : new streamBinding.WriteWrap();

/** Whether writes here bypass socket.write on this Node (a test asserts it, so a silent fallback is seen). */
export const directWrites = streamBinding !== null;

export function errnoError(status: number, syscall: string): Error {
  const code = getSystemErrorName(status);
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno: status, syscall });
}

function onComplete(this: WriteRequest, status: number): void {
  const owner = this.owner!;
  this.owner = null;
  this.buffer = null;
  if (status < 0) owner.destroy(errnoError(status, 'write'));
  // libuv has nothing left: tell whoever waits. A Writable chunk still queued at worst makes this
  // 'drain' early, and the next write says false again; waiting for Writable's own 'drain' could
  // wait forever, as it sends one only when its own write said false.
  else if (this.handle!.writeQueueSize === 0) owner.emit('drain');
}

/**
 * Writes `data` on `handle` (a string as latin1, an array in one writev). True when the kernel took
 * it all; false when libuv holds the rest (`owner` gets 'drain' once it is out) or it failed
 * (`owner` is destroyed). `data` must stay unchanged until then. Needs `directWrites`.
 */
export function writeToHandle(owner: WriteOwner, handle: StreamHandle, data: Buffer | string | Buffer[]): boolean {
  const req = spare!;
  const status = typeof data === 'string' ? handle.writeLatin1String(req, data)
    : Array.isArray(data) ? handle.writev(req, data, true) : handle.writeBuffer(req, data);
  if (status !== 0) {
    owner.destroy(errnoError(status, 'write'));
    return false;
  }
  if (streamBinding!.streamBaseState[streamBinding!.kLastWriteWasAsync] === 0) return true;
  spare = new streamBinding!.WriteWrap();
  req.handle = handle;
  req.owner = owner;
  req.buffer = data; // held until libuv is done with the bytes
  req.oncomplete = onComplete;
  return false;
}

/** A TLS socket (its writes are encrypted first, and always complete later). */
export function isTls(socket: ClientSocket): boolean {
  return 'encrypted' in socket;
}

function handleOf(socket: Socket): StreamHandle | null {
  return (socket as unknown as { _handle: StreamHandle | null })._handle;
}

function direct(socket: Socket): StreamHandle | null {
  const handle = handleOf(socket);
  // Direct, each TLS write would say false and pause the backend.
  if (spare === null || handle === null || isTls(socket) || socket.connecting || socket.writableLength !== 0 || socket.writableCorked !== 0 || socket.destroyed || !socket.writable) return null;
  return handle;
}

/**
 * socket.write(data), a string as latin1, pieces in one writev, with the same contract: false asks
 * the caller to wait for 'drain'. `data` must stay unchanged until then. A RawSocket takes its
 * writes on its own path.
 */
export function send(socket: ClientSocket, data: Buffer | string | Buffer[]): boolean {
  const handle = socket instanceof Socket ? direct(socket) : null;
  if (handle !== null) return writeToHandle(socket as Socket, handle, data);
  if (Array.isArray(data)) {
    // One at a time, in order: once the first waits in the Writable's queue, so do the others.
    let taken = true;
    for (const piece of data) taken = send(socket, piece);
    return taken;
  }
  if (!(socket instanceof Socket)) return socket.write(data);
  return typeof data === 'string' ? socket.write(data, 'latin1') : socket.write(data);
}

/** Bytes written to `socket` and not yet taken by the kernel, by either path. */
export function writePending(socket: ClientSocket): boolean {
  if (!(socket instanceof Socket)) return socket.writePending;
  if (socket.writableLength > 0) return true;
  const handle = handleOf(socket);
  return handle !== null && handle.writeQueueSize > 0;
}
