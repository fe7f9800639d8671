// A plain TCP connection driven on its libuv handle, without net.Socket: a client connection
// accepted on a plain HTTP listener, or a connection the HTTP pool opens to a backend. A
// net.Socket is a Duplex stream: its construction, its states and its teardown cost more than the
// HTTP work of a short connection (a Node server answering one request per connection made 8.6-10k
// req/s through net.Socket and 13-23k on the handle, p99 24 ms against 2-4 ms), and each of its
// reads passes through stream glue. TLS and TCP-mode listeners keep net.Socket, whose streams
// they use (TLS needs one under it), and so do TCP-mode tunnels to backends.
//
// It keeps net.Socket's meaning for what Turbine uses, with allowHalfOpen: 'end' when the peer
// shuts its side, end() shuts Turbine's after the queued writes, the socket closes once both sides
// are shut or at destroy(); write() says false while libuv holds bytes, then 'drain'; 'error'
// comes before 'close'; setTimeout() emits 'timeout' after that long without a read or write.
// Small writes leave at the end of the event loop's turn (turn-batch.ts), in the order written.
import { EventEmitter } from 'node:events';
import { isIP, type Socket } from 'node:net';
import { errnoError, isTls, streamBinding, writeToHandle, type StreamHandle } from './socket-write.js';
import { TurnBatch } from './turn-batch.js';

/** What ClientConnection and the listeners need of a client connection: a net.Socket (TLS) or a RawSocket. */
export type ClientSocket = Socket | RawSocket;

/** libuv's end of stream (UV_EOF), the one negative read that is not an error. */
const UV_EOF = -4095;

/**
 * Closes a socket with a TCP reset, so its peer sees the stream cut rather than ended. A TLS
 * socket's handle cannot be reset (Node throws ERR_INVALID_HANDLE_TYPE: asked to, in an event
 * handler, it took the process down): the TCP socket under it is, and the TLS socket destroyed.
 */
export function resetSocket(socket: ClientSocket): void {
  if (socket instanceof RawSocket) {
    socket.resetAndDestroy();
    return;
  }
  const tcp = isTls(socket) ? (socket as Socket & { _parent?: Socket | null })._parent : socket;
  try {
    if (tcp && !tcp.destroyed) tcp.resetAndDestroy();
  } catch {
    // Not a TCP handle either (no parent socket to reach): a plain close below.
  }
  socket.destroy();
}

/** The accepted handle (Node's TCPWrap), as far as RawSocket uses it. */
export interface TcpHandle extends StreamHandle {
  onread: () => Buffer | undefined;
  useUserBuffer(buffer: Uint8Array): void;
  readStart(): number;
  readStop(): number;
  shutdown(req: object): number;
  close(callback: () => void): void;
  reset?(callback: () => void): number;
  setNoDelay(enable: boolean): number;
  getpeername(out: { address?: string; port?: number }): number;
  connect(req: object, address: string, port: number): number;
  connect6(req: object, address: string, port: number): number;
}

/** Node's tcp_wrap binding, as far as RawSocket.connect uses it. */
interface TcpWrap {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => { oncomplete?: (status: number) => void };
  constants: { SOCKET: number };
}

function tcpWrap(): TcpWrap | null {
  try {
    const binding = (process as unknown as { binding(name: string): Partial<TcpWrap> }).binding('tcp_wrap');
    return typeof binding.TCP === 'function' && typeof binding.TCPConnectWrap === 'function' && typeof binding.constants?.SOCKET === 'number' ? binding as TcpWrap : null;
  } catch {
    return null;
  }
}

const tcpBinding = tcpWrap();

/** Whether this Node has what RawSocket drives a handle with (a test asserts it, so a missing one is seen). */
export const rawSocketsAvailable = streamBinding !== null && tcpBinding !== null;

export class RawSocket extends EventEmitter {
  /** Gets each read, a view of the read buffer valid during the call; unset, reads are dropped. */
  onBytes: (chunk: Buffer) => void = () => {};
  destroyed = false;
  /** Opened by connect(): its connection is not made yet. */
  connecting = false;
  private paused = false;
  /** The peer shut its side (its EOF was read). */
  private readEnded = false;
  /** end() was called: nothing more is written. */
  private ending = false;
  /** Turbine's side is shut (the shutdown after the queued writes completed). */
  private writeEnded = false;
  private corked: Buffer[] | null = null;
  private readonly batch = new TurnBatch((data) => this.destroyed || writeToHandle(this, this.handle, data), () => this.writePending);
  private peer: string | undefined;
  private idleMs = 0;
  private lastActive = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The lastActive of the idle spell that last emitted 'timeout'. */
  private timedOutAt = NaN;

  /**
   * `nextBuffer`, asked after each read, may give another buffer to read into (undefined: the same
   * one), as Node's `onread.buffer` does: a backend connection's reads move to a second buffer
   * while a write still holds the first (read-buffer.ts).
   */
  constructor(private readonly handle: TcpHandle, private readBuffer: Buffer, private readonly nextBuffer: (() => Buffer | undefined) | null = null, connecting = false) {
    super();
    this.connecting = connecting;
    handle.useUserBuffer(readBuffer);
    handle.onread = this.onRead;
    if (!connecting) {
      handle.setNoDelay(true);
      handle.readStart();
    }
  }

  /** A connection to an IP address. Writes before it is made wait in libuv; then 'connect', or 'error' and 'close' when it fails. */
  static connect(address: string, port: number, readBuffer: Buffer, nextBuffer: (() => Buffer | undefined) | null): RawSocket {
    const socket = new RawSocket(new tcpBinding!.TCP(tcpBinding!.constants.SOCKET), readBuffer, nextBuffer, true);
    socket.connectTo(address, port);
    return socket;
  }

  private connectTo(address: string, port: number): void {
    const req = new tcpBinding!.TCPConnectWrap();
    const fail = (status: number) => this.destroy(Object.assign(errnoError(status, 'connect'), { address, port }));
    req.oncomplete = (status) => {
      if (this.destroyed) return;
      if (status < 0) {
        fail(status);
        return;
      }
      this.connecting = false;
      this.handle.setNoDelay(true);
      if (!this.paused) this.handle.readStart();
      if (this.ending) this.shutdown();
      this.emit('connect');
    };
    const status = isIP(address) === 6 ? this.handle.connect6(req, address, port) : this.handle.connect(req, address, port);
    if (status !== 0) fail(status);
  }

  get remoteAddress(): string | undefined {
    if (this.peer === undefined && !this.destroyed) {
      const out: { address?: string } = {};
      if (this.handle.getpeername(out) === 0) this.peer = out.address;
    }
    return this.peer;
  }

  /** A write libuv finished counts as activity for setTimeout, as net.Socket counts it: a tunnel to a slow reader is not idle. */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'drain' && this.idleMs !== 0) this.lastActive = performance.now();
    return super.emit(event, ...args);
  }

  /** As net.Socket's: the peer's end of stream was read. */
  get readableEnded(): boolean {
    return this.readEnded;
  }

  /** Bytes written that libuv holds, not yet taken by the kernel. */
  get writePending(): boolean {
    return !this.destroyed && this.handle.writeQueueSize > 0;
  }

  /** Bytes written that wait for the end of the turn (turn-batch.ts); a destroyed socket's were dropped. */
  get batched(): boolean {
    return this.batch.waiting;
  }

  /** As net.Socket's: a write said false and its 'drain' has not come yet (libuv still holds bytes). */
  get writableNeedDrain(): boolean {
    return this.writePending;
  }

  /**
   * Returns the buffer for the next read when it changes (undefined: the same one), as Node's own
   * onread does: the handle takes it from the return value. useUserBuffer would stack a new native
   * listener on the handle at every call (Node 20), a leak of one per switch.
   */
  private readonly onRead = (): Buffer | undefined => {
    const n = streamBinding!.streamBaseState[streamBinding!.kReadBytesOrError]!;
    if (n > 0) {
      if (this.idleMs !== 0) this.lastActive = performance.now();
      this.onBytes(this.readBuffer.subarray(0, n));
      const next = this.nextBuffer?.();
      if (next !== undefined && next !== this.readBuffer && !this.destroyed) {
        this.readBuffer = next;
        return next;
      }
    } else if (n === UV_EOF) {
      this.readEnded = true;
      this.emit('end');
      if (this.writeEnded) this.destroy();
    } else if (n < 0) this.destroy(errnoError(n, 'read'));
    return undefined;
  };

  /** socket.write(data): a string goes as latin1. False: libuv holds bytes, 'drain' follows. */
  write(data: Buffer | string, _encoding?: 'latin1'): boolean {
    if (this.destroyed || this.ending) return true; // after the end nothing goes out, as nothing would be read
    if (this.idleMs !== 0) this.lastActive = performance.now();
    if (this.corked !== null) {
      this.corked.push(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
      return true;
    }
    return this.batch.write(data);
  }

  /** Writes after this wait for uncork(), then leave in one writev. */
  cork(): void {
    this.corked ??= [];
  }

  uncork(): void {
    const chunks = this.corked;
    if (chunks === null) return;
    this.corked = null;
    for (const chunk of chunks) this.write(chunk);
  }

  /** Shuts Turbine's side once the queued writes are out; the socket closes when the client's side is shut too. */
  end(data?: Buffer | string): void {
    if (data !== undefined) this.write(data);
    if (this.ending || this.destroyed) return;
    this.uncork();
    this.batch.flush(); // what waits goes before the shutdown
    this.ending = true;
    // Asked while connecting, libuv would keep the shutdown until a write that may never come: it follows the connection.
    if (!this.connecting) this.shutdown();
  }

  private shutdown(): void {
    const req = new streamBinding!.ShutdownWrap();
    req.handle = this.handle;
    req.oncomplete = (status) => {
      this.writeEnded = true;
      if (status < 0 || this.readEnded) this.destroy();
    };
    if (this.handle.shutdown(req) !== 0) this.destroy();
  }

  pause(): this {
    if (!this.paused && !this.destroyed && !this.readEnded && !this.connecting) this.handle.readStop();
    this.paused = true;
    return this;
  }

  resume(): this {
    if (this.paused && !this.destroyed && !this.readEnded && !this.connecting) this.handle.readStart();
    this.paused = false;
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  /** Emits 'timeout' after `ms` without a read or a write (0: never); the socket stays open, as net.Socket's. */
  setTimeout(ms: number, onTimeout?: () => void): this {
    if (onTimeout) {
      if (ms === 0) this.removeListener('timeout', onTimeout);
      else this.once('timeout', onTimeout);
    }
    this.idleMs = ms;
    this.timedOutAt = NaN;
    this.lastActive = performance.now();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (ms > 0 && !this.destroyed) this.armTimer(ms);
    return this;
  }

  private armTimer(ms: number): void {
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(ms)));
    this.timer.unref();
  }

  private readonly onTimer = () => {
    this.timer = null;
    if (this.destroyed || this.idleMs === 0) return;
    const left = this.lastActive + this.idleMs - performance.now();
    if (left > 0) {
      this.armTimer(left);
      return;
    }
    // As net.Socket's: one 'timeout' per idle spell, and another after new activity goes idle again.
    this.armTimer(this.idleMs);
    if (this.timedOutAt === this.lastActive) return;
    this.timedOutAt = this.lastActive;
    this.emit('timeout');
  };

  /** Closes at once; an `err` is emitted as 'error' (when someone listens) before 'close'. */
  destroy(err?: Error): this {
    this.close(err, false);
    return this;
  }

  /** Closes with a TCP reset, so the client sees the connection cut rather than ended. */
  resetAndDestroy(): this {
    this.close(undefined, true);
    return this;
  }

  private close(err: Error | undefined, reset: boolean): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.batch.drop();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (err !== undefined) process.nextTick(() => { if (this.listenerCount('error') > 0) this.emit('error', err); });
    const closed = () => this.emit('close', err !== undefined);
    // libuv refuses to reset a handle whose shutdown is pending, and Node's reset marks the handle
    // closing even then, so close() after a failed reset would never call back: close it plainly.
    const shutting = this.ending && !this.writeEnded;
    if (reset && !shutting && typeof this.handle.reset === 'function') this.handle.reset(closed);
    else this.handle.close(closed);
  }
}
