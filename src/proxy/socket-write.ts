// Writes straight to a socket's libuv handle when nothing is queued ahead of them. socket.write
// goes through the Writable state machine, the socket's timer and a write request object made for
// every call; at 100 B keep-alive that was 5% of the CPU for two writes a request that the kernel
// takes at once. A write the kernel does not take whole is left to libuv (which keeps writes in
// order) and reported like a full Writable: false now, 'drain' once it is out. Turbine's HTTP
// timeouts are its own (ClientConnection), so no socket timer is skipped. Anything unusual (a
// socket still connecting, corked, with Writable chunks queued, or a Node without these internals)
// and TLS sockets take socket.write.
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

interface WriteRequest {
  handle?: StreamHandle;
  socket?: Socket | null;
  buffer?: Buffer | string | null;
  oncomplete?: (this: WriteRequest, status: number) => void;
}

interface StreamHandle {
  writeQueueSize: number;
  writeBuffer(req: WriteRequest, data: Buffer): number;
  writeLatin1String(req: WriteRequest, data: string): number;
}

interface StreamWrap {
  WriteWrap: new () => WriteRequest;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

/** Node's stream_wrap binding (public through process.binding's allow list), or null without what this module uses. */
function streamWrap(): StreamWrap | null {
  try {
    const binding = (process as unknown as { binding(name: string): Partial<StreamWrap> }).binding('stream_wrap');
    const ok = typeof binding.WriteWrap === 'function' && binding.streamBaseState instanceof Int32Array && typeof binding.kLastWriteWasAsync === 'number';
    return ok ? binding as StreamWrap : null;
  } catch {
    return null;
  }
}

const wrap = streamWrap();
/** A write request is needed only when the kernel does not take the bytes at once: one is kept ready and replaced when used. */
let spare: WriteRequest | null = wrap === null ? null : new wrap.WriteWrap();

/** Whether writes here bypass socket.write on this Node (a test asserts it, so a silent fallback is seen). */
export const directWrites = wrap !== null;

function writeError(status: number): Error {
  const code = getSystemErrorName(status);
  return Object.assign(new Error(`write ${code}`), { code, errno: status, syscall: 'write' });
}

function onComplete(this: WriteRequest, status: number): void {
  const socket = this.socket!;
  this.socket = null;
  this.buffer = null;
  if (status < 0) socket.destroy(writeError(status));
  // libuv has nothing left: tell whoever waits. A Writable chunk still queued at worst makes this
  // 'drain' early, and the next write says false again; waiting for Writable's own 'drain' could
  // wait forever, as it sends one only when its own write said false.
  else if (this.handle!.writeQueueSize === 0) socket.emit('drain');
}

/** A TLS socket (its writes are encrypted first, and always complete later). */
export function isTls(socket: Socket): boolean {
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

/** After a direct write: true when the kernel took it all; false when libuv holds the rest ('drain' follows) or it failed (the socket is destroyed). */
function settle(socket: Socket, handle: StreamHandle, req: WriteRequest, status: number, data: Buffer | string): boolean {
  if (status !== 0) {
    socket.destroy(writeError(status));
    return false;
  }
  if (wrap!.streamBaseState[wrap!.kLastWriteWasAsync] === 0) return true;
  spare = new wrap!.WriteWrap();
  req.handle = handle;
  req.socket = socket;
  req.buffer = data; // held until libuv is done with the bytes
  req.oncomplete = onComplete;
  return false;
}

/** socket.write(data), the same contract: false asks the caller to wait for 'drain'. `data` must stay unchanged until then. */
export function send(socket: Socket, data: Buffer): boolean {
  const handle = direct(socket);
  if (handle === null) return socket.write(data);
  const req = spare!;
  return settle(socket, handle, req, handle.writeBuffer(req, data), data);
}

/** socket.write(text, 'latin1'), the same contract. */
export function sendLatin1(socket: Socket, text: string): boolean {
  const handle = direct(socket);
  if (handle === null) return socket.write(text, 'latin1');
  const req = spare!;
  return settle(socket, handle, req, handle.writeLatin1String(req, text), text);
}

/** Bytes written to `socket` and not yet taken by the kernel, by either path. */
export function writePending(socket: Socket): boolean {
  if (socket.writableLength > 0) return true;
  const handle = handleOf(socket);
  return handle !== null && handle.writeQueueSize > 0;
}
