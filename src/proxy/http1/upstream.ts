// Connections to backends: one socket per exchange, kept idle per backend address after a clean
// response and reused (HAProxy's http-reuse safe). A socket that was mid-response when its
// exchange ended is destroyed, never pooled. A retired backend gets no new connections; the
// exchanges it still has finish, or are cut at the drain timeout.
//
// The bytes of a response cannot be told from those of the next: a backend that sends more than
// it framed (a body to a HEAD, a second response) puts them before the next exchange on that
// connection. Shared at once, they were another client's answer (and every later client's, one
// behind). So a connection stays with the client connection whose exchange ended on it for
// HOLD_MS (up to MAX_HELD of them, one per backend): that client's next request takes it at any
// age; others take it once HOLD_MS has passed, time enough for late bytes to show, and a
// connection that gets bytes while idle is closed. Held longer (as HAProxy's sessions keep theirs),
// backend connections grew with the number of open clients, and a backend that serves one
// connection per worker waited on idle ones.
import { connect, isIP, type Socket } from 'node:net';
import type { Backend } from '../../routing/table.js';
import { Members, type Member } from '../members.js';
import { reusedReadBuffer, type ReusedReads } from '../read-buffer.js';
import { RawSocket, rawSocketsAvailable, type ClientSocket } from '../raw-socket.js';
import { send } from '../socket-write.js';

/** How long an idle upstream connection is kept (below common backend keep-alive timeouts, as undici's 4 s). */
const IDLE_MS = 4_000;
/** How often idle connections are looked at: one closes between IDLE_MS and IDLE_MS + SWEEP_MS idle. */
const SWEEP_MS = 500;
/**
 * Idle backend connections one client connection keeps, to different backends (HAProxy's
 * max-session-srv-conns is 10; fewer here, as each idle one holds a read buffer).
 */
const MAX_HELD = 4;
/** How long a connection stays with the client whose exchange ended on it before others may take it. */
const HOLD_MS = 50;

/** What owns a busy upstream connection: the client connection whose exchange it carries. */
export interface UpstreamOwner {
  onUpstreamConnect(): void;
  /** Where the backend's bytes are written: the client's socket. */
  readonly downstream: ClientSocket;
  /** Bytes from the backend, a view of the connection's read buffer valid during the call (see reusedReadBuffer). */
  onUpstreamData(chunk: Buffer): void;
  onUpstreamEnd(): void;
  onUpstreamError(err: Error): void;
  /** The socket closed without an error, both sides having ended (an error comes as onUpstreamError). */
  onUpstreamClose(): void;
  onUpstreamTimeout(): void;
  onUpstreamDrain(): void;
  /** The connections it keeps between its exchanges, oldest first (the pool fills and empties it). */
  readonly held: UpstreamConnection[];
  /** Whether it keeps a connection whose exchange ended cleanly: false once it is closing. */
  readonly keepsUpstreams: boolean;
}

export class UpstreamConnection {
  /**
   * A RawSocket; a net.Socket (whose writes go at once, as latin1) for a backend named by host name, which
   * the routing table resolves before it gets here, or on a Node without the handles RawSocket drives.
   */
  readonly socket: RawSocket | Socket;
  owner: UpstreamOwner | null = null;
  /** The client connection keeping it while idle; null when idle in the shared list, or busy. */
  holder: UpstreamOwner | null = null;
  connected = false;
  /** True once it carried an exchange to its end: a close before any byte may be a keep-alive race. */
  reused = false;
  /** When it last went idle (performance.now()). */
  idleSince = 0;

  readonly reads: ReusedReads;
  /** Its place in its slot's `all`. */
  readonly membership: Member<UpstreamConnection>;

  /** Its owner times the connect and the exchange (ClientConnection); a tunnel sets the socket's timeout. */
  constructor(private readonly pool: UpstreamPool, readonly slot: Slot) {
    this.membership = slot.all.add(this);
    this.reads = reusedReadBuffer(this.onData, () => this.owner?.downstream ?? null);
    const { host, port } = slot.backend;
    if (rawSocketsAvailable && isIP(host) !== 0) {
      const socket = RawSocket.connect(host, port, this.reads.buffer(), this.reads.buffer);
      socket.onBytes = this.reads.read;
      this.socket = socket;
    } else this.socket = connect({ host, port, noDelay: true, allowHalfOpen: true, onread: this.reads });
    this.socket.on('connect', this.onConnect);
    this.socket.on('end', this.onEnd);
    this.socket.on('error', this.onError);
    this.socket.on('close', this.onClose);
    this.socket.on('timeout', this.onTimeout);
    this.socket.on('drain', this.onDrain);
  }

  get backend(): Backend {
    return this.slot.backend;
  }

  /** Writes request bytes, in order (small ones leave at the end of the turn); false: wait for the owner's onUpstreamDrain. */
  write(data: Buffer | string): boolean {
    return send(this.socket, data);
  }

  private readonly onConnect = () => {
    this.connected = true;
    this.owner?.onUpstreamConnect();
  };

  private readonly onData = (chunk: Buffer) => {
    if (this.owner !== null) this.owner.onUpstreamData(chunk);
    else this.socket.destroy(); // bytes nobody asked for on an idle connection: it cannot be reused
  };

  private readonly onEnd = () => {
    if (this.owner) this.owner.onUpstreamEnd();
    else this.socket.destroy();
  };

  private readonly onError = (err: Error) => {
    const owner = this.owner;
    this.pool.forget(this);
    this.socket.destroy();
    owner?.onUpstreamError(err);
  };

  private readonly onClose = (hadError: boolean) => {
    const owner = this.owner;
    this.pool.forget(this);
    if (owner === null) return;
    if (hadError) owner.onUpstreamError(Object.assign(new Error('backend closed the connection'), { code: 'ECONNRESET' }));
    else owner.onUpstreamClose();
  };

  private readonly onTimeout = () => {
    if (this.owner) this.owner.onUpstreamTimeout();
    else this.socket.destroy();
  };

  private readonly onDrain = () => this.owner?.onUpstreamDrain();
}

/**
 * The connections to one backend address. A connection knows its slot, so giving one back costs
 * no lookup, and an exchange only moves a connection between `idle` and busy (a count).
 */
class Slot {
  readonly all = new Members<UpstreamConnection>();
  /** Oldest first: connections are taken from the end. */
  readonly idle: UpstreamConnection[] = [];
  /**
   * Held connections in the order they were held, with the idleSince each was held at: an entry
   * whose connection was taken back or held again since is stale and skipped. From `heldHead`.
   */
  readonly heldOrder: UpstreamConnection[] = [];
  readonly heldAt: number[] = [];
  heldHead = 0;
  /** Connections carrying an exchange (those with an owner). */
  busy = 0;
  /** Set while the address is retired with exchanges left: `done` is called when the last one ends, and an address retired again meanwhile waits for the same `drained`. */
  retiring: { done: () => void; drained: Promise<void> } | null = null;

  constructor(readonly backend: Backend) {}
}

export class UpstreamPool {
  private readonly slots = new Map<string, Slot>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly drainTimeoutMs: number) {}

  /** An idle connection to `backend` if one is left (and not `fresh`), else a new one. `now`: performance.now(). */
  acquire(backend: Backend, owner: UpstreamOwner, fresh: boolean, now: number): UpstreamConnection {
    let slot = this.slots.get(backend.address);
    if (slot === undefined) {
      slot = new Slot(backend);
      this.slots.set(backend.address, slot);
    }
    let conn = fresh ? undefined : this.takeHeld(owner, slot);
    this.shareHeld(slot, now);
    if (!fresh) {
      conn ??= slot.idle.pop();
      while (conn !== undefined && conn.socket.destroyed) conn = slot.idle.pop();
    }
    conn ??= new UpstreamConnection(this, slot);
    conn.owner = owner;
    slot.busy += 1;
    return conn;
  }

  /**
   * The exchange ended: a clean connection goes back to the idle list (reading, so a close is
   * seen), any other is destroyed, unless `ending`: a tunnel whose both sides ended, whose socket
   * still sends what it holds and then closes on its own (pooled never).
   */
  release(conn: UpstreamConnection, clean: boolean, ending = false): void {
    // Read first: the last exchange of a retired address ending clears `retiring`, and its connection must not be pooled.
    const retired = conn.slot.retiring !== null;
    const owner = conn.owner;
    this.leaveBusy(conn);
    if (ending) return;
    if (!clean || conn.socket.destroyed || retired) {
      conn.socket.destroy();
      return;
    }
    conn.reused = true;
    // The spare stays while the connection may be taken again at once (every small answer waits
    // in a batch, so each exchange needs two buffers); the sweep lets it go once the connection rests.
    conn.socket.resume();
    conn.idleSince = performance.now();
    this.sweeper ??= setInterval(this.sweep, SWEEP_MS).unref();
    if (owner === null || !owner.keepsUpstreams) {
      conn.slot.idle.push(conn);
      return;
    }
    if (owner.held.length === MAX_HELD) this.share(owner.held.shift()!);
    conn.holder = owner;
    owner.held.push(conn);
    conn.slot.heldOrder.push(conn);
    conn.slot.heldAt.push(conn.idleSince);
  }

  /** Shares the slot's connections held for HOLD_MS, and drops the stale entries before them. */
  private shareHeld(slot: Slot, now: number): void {
    const order = slot.heldOrder;
    const limit = now - HOLD_MS;
    let head = slot.heldHead;
    while (head < order.length) {
      const conn = order[head]!;
      const current = conn.holder !== null && conn.idleSince === slot.heldAt[head];
      if (current && slot.heldAt[head]! > limit) break;
      head += 1;
      if (current) {
        this.unholdOne(conn);
        this.share(conn);
      }
    }
    if (head === order.length) {
      order.length = 0;
      slot.heldAt.length = 0;
      head = 0;
    } else if (head > 1024 && head * 2 > order.length) {
      order.splice(0, head);
      slot.heldAt.splice(0, head);
      head = 0;
    }
    slot.heldHead = head;
  }

  /** The client connection is closing: the connections it kept are shared. */
  unhold(owner: UpstreamOwner): void {
    for (const conn of owner.held) this.share(conn);
    owner.held.length = 0;
  }

  /** Off its holder's list, if it has one. */
  private unholdOne(conn: UpstreamConnection): void {
    if (conn.holder === null) return;
    const held = conn.holder.held;
    const at = held.indexOf(conn);
    if (at !== -1) held.splice(at, 1);
    conn.holder = null;
  }

  /** `owner`'s connection to `slot`'s backend, if it keeps one (off its list). */
  private takeHeld(owner: UpstreamOwner, slot: Slot): UpstreamConnection | undefined {
    const held = owner.held;
    for (let i = held.length - 1; i >= 0; i -= 1) {
      const conn = held[i]!;
      if (conn.slot !== slot) continue;
      held.splice(i, 1);
      conn.holder = null;
      return conn.socket.destroyed ? undefined : conn;
    }
    return undefined;
  }

  /** A kept connection joins the shared idle list, in its place by idle time (the sweep closes the oldest first). */
  private share(conn: UpstreamConnection): void {
    conn.holder = null;
    const list = conn.slot.idle;
    let at = list.length;
    while (at > 0 && list[at - 1]!.idleSince > conn.idleSince) at -= 1;
    list.splice(at, 0, conn);
  }

  /** A connection that closed or failed: off every list. */
  forget(conn: UpstreamConnection): void {
    this.leaveBusy(conn);
    this.unholdOne(conn);
    const slot = conn.slot;
    if (!slot.all.delete(conn.membership)) return;
    const at = slot.idle.indexOf(conn);
    if (at !== -1) slot.idle.splice(at, 1);
    if (slot.all.size === 0 && this.slots.get(slot.backend.address) === slot) this.slots.delete(slot.backend.address);
  }

  /** The connection's exchange is over: it has no owner any more. */
  private leaveBusy(conn: UpstreamConnection): void {
    if (conn.owner === null) return;
    conn.owner = null;
    const slot = conn.slot;
    slot.busy -= 1;
    if (slot.busy === 0) slot.retiring?.done();
  }

  /** The backend left the table. Resolves when its last exchange ends (or is cut at the drain timeout); null when it had none. */
  retire(address: string): Promise<void> | null {
    const slot = this.slots.get(address);
    if (slot === undefined) return null;
    for (const conn of slot.idle.splice(0)) conn.socket.destroy();
    for (const conn of slot.all.values()) if (conn.holder !== null) conn.socket.destroy();
    if (slot.busy === 0) return null;
    if (slot.retiring === null) {
      const timer = setTimeout(() => { for (const conn of slot.all.values()) conn.socket.destroy(); }, this.drainTimeoutMs);
      timer.unref();
      let done = () => {};
      const drained = new Promise<void>((resolve) => { done = resolve; });
      slot.retiring = {
        drained,
        done: () => {
          clearTimeout(timer);
          slot.retiring = null;
          done();
        },
      };
    }
    return slot.retiring.drained;
  }

  /** The address is routed to again: its exchanges are no longer drained (nor cut at the drain timeout), and its connections are pooled again. */
  unretire(address: string): void {
    this.slots.get(address)?.retiring?.done();
  }

  /**
   * Closes the connections idle for longer than IDLE_MS, and lets the spare read buffer of those
   * idle for a sweep go (one buffer each while they rest). A sweep rather than a socket timeout per
   * connection: setting one on every release and clearing it on every acquire cost 5% of the CPU
   * at 100 B keep-alive. Lists are oldest first, as connections are taken from their end.
   */
  private readonly sweep = () => {
    const now = performance.now();
    const expired = now - IDLE_MS;
    const resting = now - SWEEP_MS;
    let idle = 0;
    for (const slot of this.slots.values()) {
      this.shareHeld(slot, now);
      const list = slot.idle;
      let n = 0;
      while (n < list.length && list[n]!.idleSince <= expired) n += 1;
      for (const conn of list.splice(0, n)) conn.socket.destroy();
      for (let i = 0; i < list.length && list[i]!.idleSince <= resting; i += 1) list[i]!.reads.dropSpare();
      idle += list.length + slot.heldOrder.length - slot.heldHead;
    }
    if (idle === 0) {
      clearInterval(this.sweeper!);
      this.sweeper = null;
    }
  };

  closeAll(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const slot of this.slots.values()) for (const conn of slot.all.values()) conn.socket.destroy();
  }
}
