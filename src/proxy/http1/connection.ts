// One client connection on an HTTP listener: request heads parsed here, one exchange at a time
// (pipelined requests wait in the buffer, so answers keep their order), bodies forwarded as bytes
// with backpressure both ways, upstream sockets taken from and given back to the pool. An upgrade
// becomes a byte tunnel only once the backend has answered 101.
import { classifyBackendError, type FailureKind } from '../../observability/failure.js';
import { NO_BACKEND } from '../../observability/stats.js';
import type { Backend } from '../../routing/table.js';
import type { ProxyContext, ServiceRuntime } from '../context.js';
import { hostOf } from '../routes.js';
import { stickyBackend, stickySetCookie, withoutStickyCookie } from '../sticky.js';
import { BodyFramer } from './body.js';
import { applyRequestFeatures, applyResponseFeatures } from './features.js';
import { field, parseRequestHead, type RequestHead } from './request-head.js';
import { localResponseBytes, type LocalResponse } from './respond.js';
import { parseResponseHead, responseText, type ResponseHead } from './response-head.js';
import { HttpError, trimOws } from './syntax.js';
import { HeadText } from './head-text.js';
import type { UpstreamConnection, UpstreamOwner } from './upstream.js';
import { owned, readIntoSharedBuffer } from '../read-buffer.js';
import { send } from '../socket-write.js';
import { resetSocket, type ClientSocket } from '../raw-socket.js';

/** Request heads above this are refused with 431 (Node's default, which Turbine had before). */
export const MAX_REQUEST_HEAD = 16 * 1024;
const MAX_RESPONSE_HEAD = 64 * 1024;
/** Pipelined bytes held while an exchange is in flight before the client is paused. */
const MAX_PIPELINED = 64 * 1024;
/** After Turbine closes its side, how long the client may take to close before it is cut. */
const LINGER_MS = 2_000;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

const STATUS_FOR: Record<FailureKind, number> = { connect: 503, timeout: 504, reset: 502, 'bad-response': 502, 'no-backend': 503, maxconn: 503 };
const TEXT_FOR: Record<FailureKind, string> = {
  connect: 'Service Unavailable: could not connect to a backend\n',
  timeout: 'Gateway Timeout: the backend did not answer in time\n',
  reset: 'Bad Gateway: the backend closed the connection\n',
  'bad-response': 'Bad Gateway: the backend\'s response was malformed\n',
  'no-backend': 'Service Unavailable: no live backend for this service\n',
  maxconn: 'Service Unavailable: too many requests in flight for this service\n',
};

/** The listener a connection came in on, and how it routes a request head. */
export interface HttpSite {
  /** The listener's key, for client-error counters. */
  readonly key: string;
  /** `x-forwarded-proto` and `x-forwarded-port` lines for this listener, made once (not a getsockname per connection), as bytes. */
  readonly forwarded: Buffer;
  /** The service to forward to, or the answer Turbine gives itself (404, redirect); `sni`: the host a TLS client's handshake named, as hostOf keys it. */
  decide(head: RequestHead, sni: string | null): ServiceRuntime | LocalResponse;
}

/** Where heads for backends are built, one at a time. */
const headText = new HeadText();
/** The fixed pieces of every head for a backend, as bytes (copied whole, not character by character). */
const VERSION_LINE_END = Buffer.from(' HTTP/1.1\r\n', 'latin1');
const XFF_NAME = Buffer.from('x-forwarded-for: ', 'latin1');
const XFH_NAME = Buffer.from('x-forwarded-host: ', 'latin1');

const enum Phase { Head, Body, Waiting, Tunnel, Closing, Closed }
/**
 * Between exchanges, what the connection waits for: a request head (408 when it does not come
 * whole), the next request, or the client to take the last answer before the next pipelined one.
 */
const enum Wait { Nothing, Head, Idle, Drain }

interface Exchange {
  head: RequestHead;
  runtime: ServiceRuntime;
  backend: Backend;
  conn: UpstreamConnection | null;
  attempt: number;
  freshRetried: boolean;
  setSticky: boolean;
  startedAt: number;
  responseBuf: Buffer | null;
  response: ResponseHead | null;
  responseBytes: number;
  /** The client speaks HTTP/1.0 and the response is chunked: its data goes out bare, the close ends it. */
  dechunk: boolean;
  /** Bytes of the final response went to the client: a failure from here cuts the connection instead of answering 502. */
  committed: boolean;
  status: number;
  sent: number;
  received: number;
  released: boolean;
  untrack: (() => void) | null;
}

/** Hop-by-hop fields (RFC 9110 7.6.1) a proxy answers for itself and never forwards; by length first, so most names are never lower-cased. */
function isHopByHop(name: string): boolean {
  switch (name.length) {
    case 7: return name.toLowerCase() === 'upgrade';
    case 10: { const lower = name.toLowerCase(); return lower === 'connection' || lower === 'keep-alive'; }
    case 16: return name.toLowerCase() === 'proxy-connection';
    default: return false;
  }
}

/** A Transfer-Encoding value without its `chunked` coding (removed for an HTTP/1.0 client). */
function withoutChunked(codings: string): string {
  return codings.split(',').map(trimOws).filter((c) => c !== '' && c.toLowerCase() !== 'chunked').join(', ');
}

export class ClientConnection implements UpstreamOwner {
  private phase = Phase.Head;
  private pending: Buffer | null = null;
  private ex: Exchange | null = null;
  private readonly requestBody = new BodyFramer();
  private readonly responseBody = new BodyFramer();
  /**
   * Every timeout of the connection (head, keep-alive, client, server, connect, linger) is one
   * deadline worked out from the state and the times below when the connection's one Timeout
   * fires; events only note the time. The Timeout is moved only when a deadline comes earlier than
   * it: touching a timer on every read and write (Node's socket timeouts) and every request cost
   * 5% of the CPU at 100 B keep-alive. Tunnels keep socket timeouts (--timeout-tunnel).
   */
  private timer: NodeJS.Timeout | null = null;
  /** When the Timeout fires (performance.now()); Infinity when none is set. */
  private timerAt = Infinity;
  private waiting = Wait.Head;
  /** When the current Wait (or the linger) began. */
  private waitSince: number;
  /** The client's last read, or last write taken by the kernel. */
  private clientActive: number;
  /** The exchange's last byte to or from its backend, or when its connection began (connect timeout). */
  private serverActive = 0;
  private clientEnded = false;
  /** Why an exchange ended with the client gone, for the client-error metric. */
  private cutFor: 'aborted' | 'client-timeout' = 'aborted';
  private processing = false;
  /** Connection: close was sent on the current response. */
  private closeAfter = false;
  private readonly address: string;
  private readonly sni: string | null;
  readonly held: UpstreamConnection[] = [];

  constructor(private readonly ctx: ProxyContext, private readonly site: HttpSite, private readonly socket: ClientSocket) {
    this.address = socket.remoteAddress ?? '';
    const servername = (socket as { servername?: string | false | null }).servername;
    this.sni = typeof servername === 'string' && servername !== '' ? hostOf(servername) : null;
    this.waitSince = this.clientActive = performance.now();
    if (!readIntoSharedBuffer(socket, this.onData)) socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
    socket.on('timeout', this.onTimeout);
    socket.on('drain', this.onDrain);
    this.wake();
  }

  /** The listener is draining: a connection between requests closes now, a busy one after its response. */
  closeIdle(): void {
    if (this.phase === Phase.Head && this.pending === null) this.close();
    else this.clientEnded = true;
  }

  // ---- client side ----

  /** A read from the client: `chunk` may be a view of the shared read buffer, so what outlives this call is `owned`. */
  private readonly onData = (chunk: Buffer) => {
    this.clientActive = performance.now();
    switch (this.phase) {
      case Phase.Head:
        this.pending = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
        if (this.waiting !== Wait.Drain) this.processPending();
        break;
      case Phase.Body:
        this.forwardBody(chunk);
        break;
      case Phase.Waiting:
        this.pending = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
        if (this.pending.length > MAX_PIPELINED) this.socket.pause();
        break;
      case Phase.Tunnel:
        this.ex!.received += chunk.length;
        if (!this.ex!.conn!.socket.write(owned(chunk))) this.socket.pause();
        break;
      default:
        break; // closing: what a client sends after Turbine's last answer is read and dropped
    }
    if (this.pending !== null) this.pending = owned(this.pending);
  };

  private readonly onEnd = () => {
    this.clientEnded = true;
    if (this.phase === Phase.Tunnel) this.ex!.conn!.socket.end();
    // Requests it sent before its end are still answered, once it takes the last answer.
    else if (this.phase === Phase.Head && this.waiting !== Wait.Drain) this.close();
  };

  /** `hadError`: the client's connection failed (a reset), rather than closing after both sides ended. */
  private readonly onClose = (hadError: boolean) => {
    const ex = this.ex;
    const phase = this.phase;
    this.phase = Phase.Closed;
    this.ctx.upstreams.unhold(this);
    // Really cleared here: a pending Timeout would keep the closed connection in memory until it fires.
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (ex === null) return;
    this.ex = null;
    if (phase === Phase.Tunnel) {
      // A clean close came after both ends: the backend's socket still sends what it holds, then
      // closes on its own (its tunnel timeout if the backend never reads). A failed client is the
      // backend's to hear of as a reset, not as an end of stream.
      const conn = ex.conn;
      if (conn && hadError && !conn.socket.destroyed) conn.socket.resetAndDestroy();
      if (conn) this.ctx.upstreams.release(conn, false, !hadError && conn.socket.readableEnded);
      this.finish(ex, 101);
      return;
    }
    if (ex.conn) this.ctx.upstreams.release(ex.conn, false);
    // Gone before its answer: the client's doing. The upstream socket may be mid-response, so it is discarded.
    this.ctx.stats.clientError(this.site.key, this.cutFor);
    this.finish(ex, 499);
  };

  private readonly onError = () => this.socket.destroy();

  /** Only a tunnel sets the client socket's timeout. */
  private readonly onTimeout = () => this.socket.destroy();

  private readonly onDrain = () => {
    this.clientActive = performance.now();
    if (this.phase === Phase.Head && this.waiting === Wait.Drain) {
      this.next();
      return;
    }
    const conn = this.ex?.conn;
    if (conn?.socket.isPaused()) {
      // The backend's silence counts again from now: Turbine, not the backend, held it back.
      this.serverActive = this.clientActive;
      conn.socket.resume();
      this.wake();
    }
  };

  // ---- timeouts ----

  /** When the client side times out: the wait between exchanges, or its silence while it owes bytes or reads a response. */
  private clientDue(): number {
    const s = this.ctx.settings;
    const silence = this.clientActive + s.clientTimeoutMs;
    switch (this.phase) {
      case Phase.Head:
        if (this.waiting === Wait.Head) return Math.min(this.waitSince + s.httpRequestTimeoutMs, silence);
        if (this.waiting === Wait.Idle) return Math.min(this.waitSince + s.keepAliveTimeoutMs, silence);
        return this.waiting === Wait.Drain ? silence : Infinity;
      case Phase.Body:
        return silence;
      case Phase.Waiting:
        // While the backend works on a request, --timeout-server decides, not the client's silence;
        // once it answers (a response, or 1xx the client has not taken), the client's silence counts.
        return this.ex !== null && (this.ex.response !== null || this.ex.conn?.socket.isPaused() === true) ? silence : Infinity;
      case Phase.Closing:
        return this.waitSince + LINGER_MS;
      default:
        return Infinity;
    }
  }

  /** When the exchange's backend side times out: connecting, or silent. */
  private serverDue(): number {
    if (this.phase !== Phase.Body && this.phase !== Phase.Waiting) return Infinity;
    const conn = this.ex?.conn;
    if (!conn) return Infinity;
    // While Turbine waits on the client (for the rest of an upload, or to take a response it has
    // stopped reading), the backend is not late: the client's deadline decides, as HAProxy stops
    // the server timeout while its buffer waits on the client.
    if (conn.connected && (this.phase === Phase.Body ? !this.socket.isPaused() : conn.socket.isPaused())) return Infinity;
    const s = this.ctx.settings;
    return this.serverActive + (conn.connected ? s.serverTimeoutMs : s.connectTimeoutMs);
  }

  /** Makes the Timeout fire by the earliest deadline of the present state. Cheap when it already does. */
  private wake(): void {
    const at = Math.min(this.clientDue(), this.serverDue());
    if (at >= this.timerAt || this.phase === Phase.Closed) return;
    if (this.timer !== null) clearTimeout(this.timer);
    // Timers run on the event loop's clock, which may lag performance.now(): a Timeout that fires early finds its deadline ahead and sets itself again.
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(at - performance.now())));
    this.timer.unref();
    this.timerAt = at;
  }

  private readonly onTimer = () => {
    this.timer = null;
    this.timerAt = Infinity;
    const now = performance.now();
    const clientLate = this.clientDue() <= now;
    const serverLate = this.serverDue() <= now;
    // Both sides silent: the one Turbine was not holding back is to blame (a client that stops
    // mid-upload is not the backend's failure, nor a backend the client does not read from).
    if (clientLate && !(serverLate && this.heldByBackend())) this.clientTimedOut();
    else if (serverLate) this.onUpstreamTimeout();
    else this.wake();
  };

  /** The client is silent because of the backend: its upload paused for a backend that does not take it, or nothing sent to it to read. */
  private heldByBackend(): boolean {
    if (this.phase === Phase.Body) return this.socket.isPaused();
    return this.phase === Phase.Waiting && this.ex?.conn?.socket.isPaused() !== true;
  }

  private clientTimedOut(): void {
    if (this.phase === Phase.Head && this.waiting === Wait.Head && this.pending !== null) {
      this.ctx.stats.clientError(this.site.key, 'header-timeout');
      this.respond(null, { status: 408, text: 'Request Timeout: the request head did not arrive in time\n' }, true);
    } else if (this.phase === Phase.Head) this.close();
    else {
      this.cutFor = 'client-timeout';
      this.socket.destroy();
    }
  }

  private processPending(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.phase === Phase.Head && this.pending !== null) {
        if (this.socket.writableNeedDrain) {
          // The client has not taken the last answer: from a client that sends requests and never
          // reads, every answer would be held here. The next request waits for 'drain' (HAProxy,
          // too, takes the next request only once the last answer is out of its buffer).
          this.socket.pause();
          this.waiting = Wait.Drain;
          this.wake();
          return;
        }
        let parsed: ReturnType<typeof parseRequestHead>;
        try {
          parsed = parseRequestHead(this.pending, MAX_REQUEST_HEAD);
        } catch (err) {
          if (!(err instanceof HttpError)) throw err;
          this.ctx.stats.clientError(this.site.key, err.reason);
          this.respond(null, { status: err.status, text: `${err.message}\n` }, true);
          return;
        }
        if (parsed === null) {
          if (this.waiting !== Wait.Head) {
            this.waiting = Wait.Head;
            this.waitSince = this.clientActive;
            this.wake();
          }
          return;
        }
        this.pending = parsed.length < this.pending.length ? this.pending.subarray(parsed.length) : null;
        this.waiting = Wait.Nothing;
        this.start(parsed.head);
        if ((this.phase as Phase) === Phase.Body && this.pending !== null) {
          const rest = this.pending;
          this.pending = null;
          this.forwardBody(rest);
        }
      }
      if (this.phase === Phase.Head && this.pending === null && this.clientEnded) this.close();
    } finally {
      this.processing = false;
    }
  }

  private start(head: RequestHead): void {
    const ctx = this.ctx;
    const decision = this.site.decide(head, this.sni);
    if (!('service' in decision)) {
      this.respond(head, decision, false);
      return;
    }
    const runtime = decision;
    const answer = applyRequestFeatures(runtime.service, head, this.address);
    if (answer !== null) {
      this.respond(head, answer, false);
      return;
    }
    const limit = ctx.settings.maxconnPerService;
    if (limit > 0 && runtime.inFlight >= limit) {
      ctx.stats.error(runtime.counters, 'maxconn');
      this.respond(head, { status: STATUS_FOR.maxconn, text: TEXT_FOR.maxconn }, false);
      return;
    }
    const sticky = runtime.service.sticky;
    const named = sticky ? stickyBackend(field(head, 'cookie'), runtime.routable, ctx.health.isUp) : null;
    const backend = named ?? runtime.balancer.pick(runtime.routable, ctx.health.isUp, this.address);
    if (backend === null) {
      ctx.stats.error(runtime.counters, 'no-backend');
      ctx.stats.request(runtime.counters, NO_BACKEND, 503, 0);
      this.respond(head, { status: 503, text: TEXT_FOR['no-backend'] }, false);
      return;
    }
    runtime.balancer.acquire(backend.address);
    runtime.inFlight += 1;
    const ex: Exchange = {
      head, runtime, backend, conn: null, attempt: 0, freshRetried: false,
      setSticky: sticky && backend !== named, startedAt: this.clientActive, responseBuf: null, response: null, responseBytes: 0,
      dechunk: false, committed: false, status: 0, sent: 0, received: 0, released: false, untrack: null,
    };
    this.ex = ex;
    this.closeAfter = false;
    if (head.framing === 'none') this.phase = Phase.Waiting;
    else {
      this.phase = Phase.Body;
      this.requestBody.reset(head.framing === 'chunked', head.contentLength);
    }
    this.dispatch(ex, false, this.clientActive);
  }

  /**
   * Sends the request head to the exchange's backend on a pooled or new connection. A retry builds
   * it again rather than the exchange keeping it: a head is a view of a 16 KiB slab (HeadText),
   * which a long poll or a WebSocket holding it would keep alive for its whole life.
   */
  private dispatch(ex: Exchange, fresh: boolean, now: number): void {
    const conn = this.ctx.upstreams.acquire(ex.backend, this, fresh, now);
    ex.conn = conn;
    this.serverActive = now;
    conn.write(this.upstreamHead(ex.head, ex.runtime.service.sticky, ex.backend));
    this.wake();
  }

  /** The request head for the backend: hop-by-hop fields out, X-Forwarded-* in (HAProxy's option forwardfor). */
  private upstreamHead(head: RequestHead, sticky: boolean, backend: Backend): Buffer {
    const out = headText.begin().add(head.method).add(' ').add(head.path).addBytes(VERSION_LINE_END);
    const f = head.fields;
    const listed = head.connectionTokens;
    let xff: string | null = null;
    for (let i = 0; i < f.length; i += 2) {
      const name = f[i]!;
      const value = f[i + 1]!;
      switch (name.length) {
        case 2: if (name.toLowerCase() === 'te') continue; break;
        case 4: if (head.absolute && name.toLowerCase() === 'host') continue; break;
        case 6: if (sticky && name.toLowerCase() === 'cookie') {
          const rest = withoutStickyCookie(value);
          if (rest !== null) out.add(name).add(': ').add(rest).add('\r\n');
          continue;
        } break;
        case 7: if (!head.upgrade && name.toLowerCase() === 'upgrade') continue; break;
        case 10: { const lower = name.toLowerCase(); if (lower === 'connection' || lower === 'keep-alive') continue; break; }
        case 15: if (name.toLowerCase() === 'x-forwarded-for') { xff = xff === null ? value : `${xff}, ${value}`; continue; } break;
        case 16: { const lower = name.toLowerCase(); if (lower === 'proxy-connection' || lower === 'x-forwarded-host' || lower === 'x-forwarded-port') continue; break; }
        case 17: if (name.toLowerCase() === 'x-forwarded-proto') continue; break;
        case 19: if (name.toLowerCase() === 'proxy-authorization') continue; break;
      }
      if (listed.length > 0 && listed.includes(name.toLowerCase()) && !(head.upgrade && name.toLowerCase() === 'upgrade')) continue;
      out.add(name).add(': ').add(value).add('\r\n');
    }
    if (head.absolute) out.add('host: ').add(head.authority).add('\r\n');
    // Sent on as HTTP/1.1, which requires Host (RFC 9112 3.2): an HTTP/1.0 request without one names the backend, as nginx's $proxy_host does.
    else if (head.minor === 0 && field(head, 'host') === undefined) out.add('host: ').add(backend.address).add('\r\n');
    if (head.upgrade) out.add('connection: upgrade\r\n');
    out.addBytes(XFF_NAME);
    if (xff !== null) out.add(xff).add(', ');
    out.add(this.address).add('\r\n').addBytes(this.site.forwarded);
    if (head.authority !== '') out.addBytes(XFH_NAME).add(head.authority).add('\r\n');
    return out.add('\r\n').take();
  }

  private forwardBody(chunk: Buffer): void {
    const ex = this.ex!;
    let n: number;
    try {
      n = this.requestBody.feed(chunk, 0, 400);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      this.ctx.stats.clientError(this.site.key, err.reason);
      this.abandon(ex, err.status, `Bad Request: ${err.message}\n`, true);
      return;
    }
    ex.received += n;
    if (n > 0 && ex.conn !== null) {
      // Until the connection is made, bytes wait in libuv's queue: they must not put off the connect timeout.
      if (ex.conn.write(owned(n === chunk.length ? chunk : chunk.subarray(0, n)))) {
        if (ex.conn.connected) this.serverActive = this.clientActive;
      } else this.socket.pause();
    }
    if (!this.requestBody.done) return;
    this.phase = Phase.Waiting;
    if (n < chunk.length) this.pending = chunk.subarray(n);
  }

  /** The exchange cannot go on: its upstream socket is discarded, the client is answered if it can be, and closed. */
  private abandon(ex: Exchange, status: number, text: string, close: boolean): void {
    this.ex = null;
    if (ex.conn) this.ctx.upstreams.release(ex.conn, false);
    ex.conn = null;
    this.finish(ex, status);
    if (!ex.committed) this.respond(ex.head, { status, text }, close);
    // A de-chunked or close-delimited body ends at the close, so a clean close would pass a truncated body as whole: a reset says it is not.
    else if (ex.dechunk || ex.response?.framing === 'close') resetSocket(this.socket);
    else this.socket.destroy();
  }

  /** Writes a local answer; the connection goes on when the request allows it. */
  private respond(head: RequestHead | null, response: LocalResponse, close: boolean): void {
    const mustClose = close || head === null || !head.keepAlive || this.clientEnded || this.phase === Phase.Body
      || (this.phase === Phase.Head && head.framing !== 'none');
    this.socket.write(localResponseBytes(response, head?.method === 'HEAD', mustClose), 'latin1');
    // The keep-alive wait starts now: an answer given at a timeout comes long after the last activity either side had.
    this.clientActive = performance.now();
    if (mustClose) this.close();
    else this.next();
  }

  /** Ready for the next request on this connection. */
  private next(): void {
    this.phase = Phase.Head;
    // Now, as far as the stamps know: a pipelined request starts its exchange here, not when it arrived.
    this.clientActive = Math.max(this.clientActive, this.serverActive);
    this.waiting = Wait.Nothing;
    this.socket.resume();
    if (this.pending !== null) this.processPending();
    else if (this.clientEnded) this.close();
    else {
      this.waiting = Wait.Idle;
      this.waitSince = this.clientActive;
      this.wake();
    }
  }

  /** Ends Turbine's side; the client gets a moment to close its own. */
  private close(): void {
    if (this.phase === Phase.Closing || this.phase === Phase.Closed) return;
    this.phase = Phase.Closing;
    this.ctx.upstreams.unhold(this);
    this.pending = null;
    this.socket.resume();
    this.socket.end();
    this.waitSince = performance.now();
    this.wake();
  }

  // ---- backend side ----

  get downstream(): ClientSocket {
    return this.socket;
  }

  get keepsUpstreams(): boolean {
    return !this.closeAfter && !this.clientEnded && this.phase < Phase.Closing;
  }

  onUpstreamConnect(): void {
    this.serverActive = performance.now();
    this.wake(); // the connect timeout gives way to --timeout-server, which may come sooner
  }

  onUpstreamData(chunk: Buffer): void {
    const ex = this.ex!;
    // A head that is still incomplete does not put off --timeout-server: it must come whole within
    // it (as HAProxy's does), so a backend trickling its head a byte at a time is not waited on forever.
    if (ex.responseBuf === null) this.serverActive = performance.now();
    if (this.phase === Phase.Tunnel) {
      ex.sent += chunk.length;
      if (!this.socket.write(chunk)) ex.conn!.socket.pause();
      return;
    }
    ex.responseBytes += chunk.length;
    if (ex.response === null) this.readResponseHead(ex, ex.responseBuf === null ? chunk : Buffer.concat([ex.responseBuf, chunk]));
    else this.forwardResponse(ex, chunk, 0);
  }

  private readResponseHead(ex: Exchange, buf: Buffer): void {
    for (;;) {
      let parsed: ReturnType<typeof parseResponseHead>;
      try {
        parsed = parseResponseHead(buf, MAX_RESPONSE_HEAD, ex.head.method === 'HEAD');
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        this.backendFailed(ex, 'bad-response', err);
        return;
      }
      if (parsed === null) {
        // The chunk lives in the upstream's read buffer: an incomplete head is kept as a copy.
        ex.responseBuf = Buffer.from(buf);
        return;
      }
      if (ex.responseBuf !== null) {
        ex.responseBuf = null;
        this.serverActive = performance.now(); // a head that came in pieces is whole: the backend's silence counts from here
      }
      const res = parsed.head;
      if (res.status < 200) {
        if (res.status === 101) {
          if (!ex.head.upgrade) this.backendFailed(ex, 'bad-response', new Error('101 Switching Protocols to a request without Upgrade'));
          else this.openTunnel(ex, buf);
          return;
        }
        // 100 Continue, 103 Early Hints: passed on as they came (an HTTP/1.0 client gets none, RFC 9110 15.2).
        // A client that does not take them holds the backend back, as with a body: endless 1xx
        // responses to a client that does not read would otherwise pile up in Turbine's memory.
        if (ex.head.minor === 1 && !this.socket.write(buf.subarray(0, parsed.length))) ex.conn!.socket.pause();
        if (parsed.length === buf.length) return;
        buf = buf.subarray(parsed.length);
        continue;
      }
      ex.response = res;
      ex.status = res.status;
      // From here the client's silence counts too (it may stop reading), from now.
      this.clientActive = this.serverActive;
      this.wake();
      // An HTTP/1.0 client cannot read chunked framing (RFC 9112 7.1): it gets the bare data and the
      // close marks the end, as nginx does; the upstream connection stays reusable. A 1.0 request
      // that came chunked ends its connection too (RFC 9112 6.1; HAProxy forces close there).
      ex.dechunk = ex.head.minor === 0 && res.framing === 'chunked';
      // An answer before the request body is whole ends the connection, and says so (RFC 9110 10.1.1).
      this.closeAfter = !ex.head.keepAlive || this.clientEnded || res.framing === 'close' || ex.dechunk
        || (ex.head.minor === 0 && ex.head.framing === 'chunked') || this.phase === Phase.Body;
      // Most responses need no rewriting: their head goes out as the backend sent it, in one write
      // with the body bytes that came with it (no head rebuilt, no writev).
      const head = this.headAsIs(ex, res) ? null : this.clientHead(ex, res, buf);
      if (res.framing !== 'none') {
        this.responseBody.reset(res.framing === 'chunked', res.contentLength);
        // The body bytes that came with the head are checked before the head goes: a malformed
        // body there still gets the client a 502, not an empty close.
        if (parsed.length < buf.length) {
          this.forwardResponse(ex, buf, parsed.length, head === null ? 0 : parsed.length, head);
          return;
        }
      }
      ex.committed = true;
      if (head === null) send(this.socket, buf.subarray(0, parsed.length));
      else this.socket.write(head, 'latin1');
      if (res.framing === 'none') this.responseDone(ex, res.keepAlive && parsed.length === buf.length);
      return;
    }
  }

  /**
   * The backend's head can reach the client unchanged: both speak HTTP/1.1 and stay connected, no
   * feature adds or rewrites a field, and no hop-by-hop field but `Connection: keep-alive` is there.
   */
  private headAsIs(ex: Exchange, res: ResponseHead): boolean {
    const service = ex.runtime.service;
    return !(res.hopByHop || ex.setSticky || this.closeAfter || ex.head.minor !== 1 || res.minor !== 1 || service.hsts || service.revProxyPath !== null);
  }

  /** The response head for the client: hop-by-hop fields out, sticky cookie and feature hooks in. */
  private clientHead(ex: Exchange, res: ResponseHead, buf: Buffer): string {
    const { reason, fields: f } = responseText(buf, res);
    let out = `HTTP/1.1 ${res.status} ${reason}\r\n`;
    applyResponseFeatures(ex.runtime.service, ex.head, res.status, f);
    let cacheControl = false;
    let lengthSent = false;
    for (let i = 0; i < f.length; i += 2) {
      const name = f[i]!;
      if (isHopByHop(name)) continue;
      switch (name.length) {
        case 13: if (name.toLowerCase() === 'cache-control') cacheControl = true; break;
        case 14: if (name.toLowerCase() === 'content-length') {
          if (lengthSent || res.status === 204) continue;
          lengthSent = true;
        } break;
        case 17: if (name.toLowerCase() === 'transfer-encoding') {
          if (res.status === 204) continue;
          if (ex.head.minor === 0) {
            const codings = withoutChunked(f[i + 1]!);
            if (codings !== '') out += `${name}: ${codings}\r\n`;
            continue;
          }
        } break;
      }
      out += `${name}: ${f[i + 1]}\r\n`;
    }
    if (ex.setSticky) {
      out += `set-cookie: ${stickySetCookie(ex.backend)}\r\n`;
      if (!cacheControl) out += 'cache-control: private\r\n';
    }
    if (this.closeAfter) out += 'connection: close\r\n';
    else if (ex.head.minor === 0) out += 'connection: keep-alive\r\n';
    return `${out}\r\n`;
  }

  /**
   * Forwards the body bytes of `buf` from `from`, after `head` (a rebuilt head) when given; the
   * write starts at `writeFrom` (0: the head as it came goes with them). Nothing is written before
   * the bytes are known good.
   */
  private forwardResponse(ex: Exchange, buf: Buffer, from: number, writeFrom = from, head: string | null = null): void {
    const res = ex.response!;
    let n = buf.length - from;
    if (res.framing !== 'close') {
      try {
        n = this.responseBody.feed(buf, from, 502, ex.dechunk ? this.keepChunkData : undefined);
      } catch (err) {
        this.chunkData.length = 0;
        this.backendFailed(ex, 'bad-response', err as Error);
        return;
      }
    }
    ex.committed = true;
    // A rebuilt head and de-chunked data (one piece per chunk) go out corked: one writev.
    const corked = head !== null || ex.dechunk;
    if (corked) {
      this.socket.cork();
      if (head !== null) this.socket.write(head, 'latin1');
    }
    if (ex.dechunk) {
      for (const piece of this.chunkData) {
        ex.sent += piece.length;
        this.socket.write(piece);
      }
      this.chunkData.length = 0;
    } else {
      ex.sent += n;
      const end = from + n;
      if (end > writeFrom) {
        if (send(this.socket, writeFrom === 0 && end === buf.length ? buf : buf.subarray(writeFrom, end))) this.clientActive = this.serverActive;
        else ex.conn?.socket.pause();
      }
    }
    if (corked && this.uncorkToClient(ex)) this.clientActive = this.serverActive;
    if (res.framing !== 'close' && this.responseBody.done) this.responseDone(ex, res.keepAlive && from + n === buf.length);
  }

  /** Writes what was corked for the client. False, with the backend paused, when libuv holds bytes: a corked write cannot say so itself. */
  private uncorkToClient(ex: Exchange): boolean {
    this.socket.uncork();
    if (!this.socket.writableNeedDrain) return true;
    ex.conn?.socket.pause();
    return false;
  }

  /** A chunked response's data, without its framing, for an HTTP/1.0 client: kept until the read is known good. */
  private readonly chunkData: Buffer[] = [];
  private readonly keepChunkData = (buf: Buffer, start: number, end: number) => {
    if (end > start) this.chunkData.push(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
  };

  /** The response is complete: the upstream socket goes back to the pool if clean, the client goes on or closes. */
  private responseDone(ex: Exchange, reusable: boolean): void {
    const requestComplete = this.phase !== Phase.Body;
    this.ex = null;
    if (ex.conn) this.ctx.upstreams.release(ex.conn, reusable && requestComplete);
    ex.conn = null;
    this.ctx.health.reportSuccess(ex.backend.address);
    this.finish(ex, ex.status);
    if (!requestComplete || this.closeAfter) this.close();
    else this.next();
  }

  onUpstreamEnd(): void {
    const ex = this.ex!;
    if (this.phase === Phase.Tunnel) this.socket.end();
    else if (ex.response !== null && ex.response.framing === 'close') this.responseDone(ex, false);
    else this.backendFailed(ex, 'reset', Object.assign(new Error('backend closed the connection'), { code: 'ECONNRESET' }));
  }

  onUpstreamError(err: Error): void {
    const ex = this.ex;
    if (ex === null) return;
    // The backend's stream was cut: so is the client's, not ended as if it were complete.
    if (this.phase === Phase.Tunnel) resetSocket(this.socket);
    else this.backendFailed(ex, classifyBackendError(err), err);
  }

  onUpstreamClose(): void {
    if (this.phase !== Phase.Tunnel) this.onUpstreamError(Object.assign(new Error('backend closed the connection'), { code: 'ECONNRESET' }));
    // A tunnel's backend that closed after its end: the client's socket sends what it holds, then
    // closes on its own. One closed here without its end (a drain timeout) closes the client's too.
    else if (this.ex?.conn?.socket.readableEnded !== true) this.socket.destroy();
  }

  onUpstreamTimeout(): void {
    const ex = this.ex!;
    if (this.phase === Phase.Tunnel) {
      this.socket.destroy();
      return;
    }
    const connecting = !ex.conn!.connected;
    const err = Object.assign(new Error(connecting ? 'connect timeout' : 'backend timeout'), { code: connecting ? 'UND_ERR_CONNECT_TIMEOUT' : 'ERR_TURBINE_TIMEOUT' });
    this.backendFailed(ex, classifyBackendError(err), err);
  }

  onUpstreamDrain(): void {
    this.serverActive = performance.now();
    if (this.phase === Phase.Body || this.phase === Phase.Tunnel) this.socket.resume();
  }

  /**
   * The backend failed this exchange. Before any response byte a bodyless idempotent request is
   * tried again (on a fresh connection after a reused one closed: the keep-alive race; else on
   * another backend); otherwise the client hears what went wrong. Mid-response, the client's
   * connection is cut: a truncated response must not look complete.
   */
  private backendFailed(ex: Exchange, kind: Exclude<FailureKind, 'no-backend' | 'maxconn'>, err: Error): void {
    const ctx = this.ctx;
    const conn = ex.conn;
    ex.conn = null;
    if (conn) ctx.upstreams.release(conn, false);
    const untouched = ex.responseBytes === 0 && ex.head.framing === 'none' && IDEMPOTENT.has(ex.head.method);
    if (untouched && kind === 'reset' && conn?.reused && !ex.freshRetried) {
      ex.freshRetried = true;
      this.dispatch(ex, true, performance.now());
      return;
    }
    const { runtime, backend } = ex;
    ctx.health.reportFailure(backend.address);
    ctx.stats.error(runtime.counters, kind);
    ctx.log.debug({ appId: backend.appId, taskId: backend.taskId, backend: backend.address, service: runtime.service.id, kind, err: err.message }, 'backend request failed');
    if (untouched && (kind === 'connect' || kind === 'reset') && ex.attempt === 0) {
      const other = runtime.balancer.pick(runtime.routable, ctx.health.isUp, this.address, backend);
      if (other !== null && other !== backend) {
        // Nothing came back and the method is idempotent: another backend may take it (HAProxy's
        // redispatch; Envoy's retry_on reset).
        runtime.balancer.release(backend.address);
        runtime.balancer.acquire(other.address);
        ex.backend = other;
        ex.attempt = 1;
        ex.responseBuf = null;
        ex.setSticky = runtime.service.sticky;
        this.dispatch(ex, false, performance.now());
        return;
      }
    }
    this.abandon(ex, STATUS_FOR[kind], TEXT_FOR[kind], this.phase === Phase.Body);
  }

  /** 101 from the backend: its head and any bytes after it go to the client, and the bytes flow both ways from now on. */
  private openTunnel(ex: Exchange, buf: Buffer): void {
    const conn = ex.conn!;
    const settings = this.ctx.settings;
    this.phase = Phase.Tunnel;
    ex.status = 101;
    ex.sent += buf.length;
    this.waiting = Wait.Nothing;
    this.ctx.health.reportSuccess(ex.backend.address);
    this.ctx.stats.tcpConnection(ex.runtime.counters, ex.backend.address);
    ex.untrack = this.ctx.trackStream(ex.backend.address, () => { this.socket.destroy(); conn.socket.destroy(); });
    conn.socket.setTimeout(settings.tunnelTimeoutMs);
    this.socket.setTimeout(settings.tunnelTimeoutMs);
    this.socket.write(buf);
    this.socket.resume();
    if (this.pending !== null) {
      ex.received += this.pending.length;
      conn.socket.write(this.pending);
      this.pending = null;
    }
    if (this.clientEnded) conn.socket.end();
  }

  /** Counters, access log and the balancer's count, once per exchange. */
  private finish(ex: Exchange, status: number): void {
    if (ex.released) return;
    ex.released = true;
    const { runtime, backend } = ex;
    runtime.balancer.release(backend.address);
    runtime.inFlight -= 1;
    ex.untrack?.();
    const ctx = this.ctx;
    const seconds = (performance.now() - ex.startedAt) / 1000;
    if (status !== 101) ctx.stats.request(runtime.counters, backend.address, status, seconds);
    runtime.counters.sentBytes += ex.sent;
    runtime.counters.receivedBytes += ex.received;
    if (ctx.settings.accessLog) {
      ctx.log.info({ service: runtime.service.id, appId: backend.appId, taskId: backend.taskId, backend: backend.address,
        method: ex.head.method, path: ex.head.path, status, durationMs: Math.round(seconds * 1e4) / 10, bytes: ex.sent, client: this.address },
      status === 101 ? 'tunnel closed' : 'access');
    }
  }
}
