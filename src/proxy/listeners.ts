// Listening sockets for traffic. Only this module opens them. A listener is identified by
// `address:port`; reconcile() opens what the table needs, and drains what it no longer does:
// the socket stops accepting, open connections finish, and are closed after the drain timeout.
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { RawSocket, rawSocketsAvailable, type ClientSocket, type TcpHandle } from './raw-socket.js';
import { Members } from './members.js';
import { clientReadBuffer } from './read-buffer.js';
import type { TlsServing } from './tls.js';

export type ListenerKind = 'service-http' | 'service-tcp' | 'vhost-http' | 'vhost-https' | 'appid';

export interface ListenerSpec {
  key: string;
  address: string;
  port: number;
  kind: ListenerKind;
  /** TLS terminated on this listener (the HTTPS listener, a service port with SSL_CERT); null: plain. */
  tls: TlsServing | null;
}

/** An HTTP client connection as the listener sees it: closed between requests when the listener drains. */
export interface HttpConnection {
  closeIdle(): void;
}

export interface ListenerHandlers {
  /** An admitted connection on an HTTP listener (TLS already terminated on a TLS one). */
  http(spec: ListenerSpec, socket: ClientSocket): HttpConnection;
  /** A TCP service's connection (TLS already terminated on a TLS listener). */
  tcp(spec: ListenerSpec, socket: Socket): void;
  /** false refuses the connection (global maxconn) before a byte of it is read. */
  admit(spec: ListenerSpec): boolean;
  closed(spec: ListenerSpec): void;
  /** A TLS client whose handshake failed, timed out, or that left during it. */
  handshakeFailed(spec: ListenerSpec): void;
}

export class ListenError extends Error {
  override readonly name = 'ListenError';
  constructor(readonly spec: ListenerSpec, readonly reason: 'in-use' | 'privileged' | 'other', message: string) {
    super(message);
  }
}

class Listener {
  readonly sockets = new Members<ClientSocket>();
  /** Called when the last open connection closes (closeAll waits for it). */
  onEmpty: (() => void) | null = null;
  readonly http = new Members<HttpConnection>();
  readonly server: TcpServer;
  /** Swapped in place when only certificates or settings change: new handshakes use the new one. */
  tls: TlsServing | null;
  constructor(readonly spec: ListenerSpec, create: (listener: Listener) => TcpServer) {
    this.tls = spec.tls;
    this.server = create(this);
  }

  setTls(tls: TlsServing): void {
    (this.server as TlsServer).setSecureContext(tls.options);
    this.tls = tls;
  }

  closeIdle(): void {
    for (const connection of this.http.values()) connection.closeIdle();
  }
}

/** A refused client that does not close after its 503 is cut after this long. */
const REFUSED_LINGER_MS = 2_000;
const BUSY_RESPONSE = 'HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: 47\r\n\r\nService Unavailable: too many open connections\n';

export class Listeners {
  private readonly open = new Map<string, Listener>();

  constructor(
    private readonly handlers: ListenerHandlers,
    private readonly drainTimeoutMs: number,
    /** How long a TLS handshake may take (HAProxy's `timeout client-hs`, which defaults to `timeout client`). */
    private readonly handshakeTimeoutMs: number,
  ) {}

  specs(): ListenerSpec[] {
    return [...this.open.values()].map((l) => l.spec);
  }

  /**
   * Opens the listeners in `wanted` that are not open, drains the ones not wanted. A listener that
   * stays gets its new certificates in place. Returns bind failures.
   */
  async reconcile(wanted: readonly ListenerSpec[], keep: (key: string) => boolean = () => false): Promise<ListenError[]> {
    const wantedKeys = new Map(wanted.map((s) => [s.key, s]));
    for (const [key, listener] of this.open) {
      const want = wantedKeys.get(key);
      if ((!want || want.kind !== listener.spec.kind || !sameTlsShape(want.tls, listener.tls)) && !keep(key)) this.drain(listener);
      else if (want?.tls && want.tls !== listener.tls && listener.tls) listener.setTls(want.tls);
    }
    const failures: ListenError[] = [];
    await Promise.all(wanted.filter((s) => !this.open.has(s.key)).map(async (spec) => {
      try {
        await this.listen(spec);
      } catch (err) {
        failures.push(err as ListenError);
      }
    }));
    return failures;
  }

  async listen(spec: ListenerSpec): Promise<void> {
    const listener = new Listener(spec, (l) => this.createServer(l));
    const server = listener.server;
    // On a TLS listener this is the raw TCP socket, before the handshake.
    server.on('connection', (socket: Socket) => this.accept(listener, socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const reason = err.code === 'EADDRINUSE' ? 'in-use' : err.code === 'EACCES' ? 'privileged' : 'other';
        const hint = reason === 'privileged' ? ` (ports below 1024 need root or CAP_NET_BIND_SERVICE)`
          : reason === 'in-use' ? ' (another process or listener holds it)' : '';
        reject(new ListenError(spec, reason, `cannot listen on ${spec.key} for ${spec.kind}: ${err.code ?? err.message}${hint}`));
      };
      server.once('error', onError);
      server.listen({ host: spec.address, port: spec.port, backlog: 4096 }, () => {
        server.off('error', onError);
        server.on('error', () => {});
        resolve();
      });
    });
    if (!spec.tls && spec.kind !== 'service-tcp') this.acceptRaw(listener);
    this.open.set(spec.key, listener);
  }

  /**
   * A plain HTTP listener's connections are taken on their handles, as RawSockets: net.Server's
   * accept callback is replaced (it stays for accept errors, which it reports as 'error'). This
   * works on a handle shared with cluster workers too (SCHED_NONE: each worker accepts on it).
   */
  private acceptRaw(listener: Listener): void {
    const handle = (listener.server as unknown as { _handle?: { onconnection?: (err: number, client?: TcpHandle) => void } })._handle;
    const nodes = handle?.onconnection;
    if (!rawSocketsAvailable || handle === undefined || typeof nodes !== 'function') return;
    handle.onconnection = (err, client) => {
      if (err !== 0 || client === undefined) nodes.call(handle, err, client);
      else this.accept(listener, new RawSocket(client, clientReadBuffer()));
    };
  }

  private accept(listener: Listener, socket: ClientSocket): void {
    const spec = listener.spec;
    if (!this.handlers.admit(spec)) {
      // Refused before anything is parsed: nothing of this connection reaches a backend.
      socket.on('error', () => socket.destroy());
      if (!spec.tls && (spec.kind === 'service-http' || spec.kind === 'vhost-http' || spec.kind === 'appid')) {
        socket.end(BUSY_RESPONSE);
        socket.resume(); // what the client sent is dropped unread, so its close is seen
        socket.setTimeout(REFUSED_LINGER_MS, () => socket.destroy());
      } else socket.destroy();
      return;
    }
    const member = listener.sockets.add(socket);
    socket.once('close', () => {
      listener.sockets.delete(member);
      this.handlers.closed(spec);
      if (listener.sockets.size === 0) listener.onEmpty?.();
    });
    if (spec.tls) return; // served once the handshake is done
    if (spec.kind === 'service-tcp') this.handlers.tcp(spec, socket as Socket);
    else this.serveHttp(listener, socket);
  }

  private serveHttp(listener: Listener, socket: ClientSocket): void {
    if (socket.destroyed) return;
    const connection = this.handlers.http(listener.spec, socket);
    const member = listener.http.add(connection);
    socket.once('close', () => listener.http.delete(member));
  }

  private createServer(listener: Listener): TcpServer {
    const tls = listener.spec.tls;
    // Half-open: a client may send its request and shut its side; the answer still goes back.
    if (!tls) return createTcpServer({ allowHalfOpen: true, noDelay: true });
    const server = createTlsServer({
      // Not half-open during the handshake: a client that shuts its side then (a port probe, an L4
      // health check) would be held, with its --maxconn slot, until the handshake timeout.
      ...tls.options, allowHalfOpen: false, handshakeTimeout: this.handshakeTimeoutMs, noDelay: true, ALPNProtocols: tls.alpn,
      // Read at each handshake, so a listener whose certificates were swapped serves the new ones.
      SNICallback: (servername, cb) => {
        const context = listener.tls?.sni(servername);
        if (context === null) cb(new Error(`no certificate for ${servername}`));
        else cb(null, context);
      },
    }, (socket: TLSSocket) => {
      socket.allowHalfOpen = true;
      if (listener.spec.kind === 'service-tcp') this.handlers.tcp(listener.spec, socket);
      else this.serveHttp(listener, socket);
    });
    server.on('tlsClientError', (_err, socket) => {
      this.handlers.handshakeFailed(listener.spec);
      socket.destroy();
    });
    return server;
  }

  private drain(listener: Listener): void {
    this.open.delete(listener.spec.key);
    listener.server.close();
    listener.closeIdle();
    if (listener.sockets.size === 0) return;
    const timer = setTimeout(() => { for (const s of listener.sockets.values()) s.destroy(); }, this.drainTimeoutMs);
    timer.unref();
  }

  /** Stops accepting everywhere; open connections get `drainMs` to finish. Resolves when all are closed. */
  async closeAll(drainMs: number): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((listener) => new Promise<void>((resolve) => {
      const timer = setTimeout(() => { for (const s of listener.sockets.values()) s.destroy(); }, drainMs);
      // Not server.close's callback: it does not wait for connections taken as RawSockets.
      let serverClosed = false;
      const done = () => {
        if (!serverClosed || listener.sockets.size > 0) return;
        clearTimeout(timer);
        resolve();
      };
      listener.onEmpty = done;
      listener.server.close(() => {
        serverClosed = true;
        done();
      });
      listener.closeIdle();
    })));
  }
}

/** Plain and TLS listeners are different servers, and ALPN is fixed when one is created: either change reopens it. */
function sameTlsShape(a: TlsServing | null, b: TlsServing | null): boolean {
  if (a === null || b === null) return a === b;
  return (a.alpn ?? []).join(',') === (b.alpn ?? []).join(',');
}
