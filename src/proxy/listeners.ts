// Listening sockets for traffic. Only this module opens them. A listener is identified by
// `address:port`; reconcile() opens what the table needs, and drains what it no longer does:
// the socket stops accepting, open connections finish, and are closed after the drain timeout.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Certificates } from './tls.js';

export type ListenerKind = 'service-http' | 'service-tcp' | 'vhost-http' | 'vhost-https' | 'appid';

export interface ListenerSpec {
  key: string;
  address: string;
  port: number;
  kind: ListenerKind;
}

export interface ListenerHandlers {
  request(spec: ListenerSpec, req: IncomingMessage, res: ServerResponse): void;
  upgrade(spec: ListenerSpec, req: IncomingMessage, socket: Duplex, head: Buffer): void;
  connection(spec: ListenerSpec, socket: Socket): void;
  /** false refuses the connection (global maxconn). */
  admit(spec: ListenerSpec, socket: Socket): boolean;
  closed(spec: ListenerSpec): void;
  clientError(spec: ListenerSpec, reason: string): void;
}

export interface ListenerTimeouts {
  clientTimeoutMs: number;
  httpRequestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  drainTimeoutMs: number;
}

export class ListenError extends Error {
  override readonly name = 'ListenError';
  constructor(readonly spec: ListenerSpec, readonly reason: 'in-use' | 'privileged' | 'other', message: string) {
    super(message);
  }
}

class Listener {
  readonly sockets = new Set<Socket>();
  constructor(readonly spec: ListenerSpec, readonly server: HttpServer | TcpServer) {}
}

const BUSY_RESPONSE = 'HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: 47\r\n\r\nService Unavailable: too many open connections\n';

export class Listeners {
  private readonly open = new Map<string, Listener>();

  constructor(
    private readonly handlers: ListenerHandlers,
    private readonly timeouts: ListenerTimeouts,
    private readonly certificates: Certificates | null,
  ) {}

  specs(): ListenerSpec[] {
    return [...this.open.values()].map((l) => l.spec);
  }

  /** Opens the listeners in `wanted` that are not open, drains the ones not wanted. Returns bind failures. */
  async reconcile(wanted: readonly ListenerSpec[], keep: (key: string) => boolean = () => false): Promise<ListenError[]> {
    const wantedKeys = new Map(wanted.map((s) => [s.key, s]));
    for (const [key, listener] of this.open) {
      const want = wantedKeys.get(key);
      if ((!want || want.kind !== listener.spec.kind) && !keep(key)) this.drain(listener);
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
    const server = this.createServer(spec);
    const listener = new Listener(spec, server);
    server.on('connection', (socket: Socket) => {
      if (!this.handlers.admit(spec, socket)) {
        if (spec.kind === 'service-tcp') socket.destroy();
        else socket.end(BUSY_RESPONSE);
        socket.on('error', () => socket.destroy());
        return;
      }
      listener.sockets.add(socket);
      socket.once('close', () => {
        listener.sockets.delete(socket);
        this.handlers.closed(spec);
      });
    });
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
    this.open.set(spec.key, listener);
  }

  private createServer(spec: ListenerSpec): HttpServer | TcpServer {
    if (spec.kind === 'service-tcp') {
      return createTcpServer({ allowHalfOpen: true, pauseOnConnect: false, noDelay: true }, (socket) => this.handlers.connection(spec, socket));
    }
    const options = {
      keepAliveTimeout: this.timeouts.keepAliveTimeoutMs,
      headersTimeout: this.timeouts.httpRequestTimeoutMs,
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1000, this.timeouts.httpRequestTimeoutMs),
      noDelay: true,
      maxHeaderSize: 16 * 1024,
    };
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.handlers.request(spec, req, res);
    const server: HttpServer = spec.kind === 'vhost-https'
      ? createHttpsServer({ ...options, ...this.certificates!.defaultContext, SNICallback: this.certificates!.sniCallback }, onRequest) as unknown as HttpServer
      : createHttpServer(options, onRequest);
    server.timeout = this.timeouts.clientTimeoutMs;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.handlers.upgrade(spec, req, socket, head));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      const reason = err.code === 'HPE_HEADER_OVERFLOW' ? 'header-too-large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'header-timeout'
        : err.code === 'ECONNRESET' ? 'reset' : 'bad-request';
      this.handlers.clientError(spec, reason);
      if (!socket.writable || reason === 'reset') {
        socket.destroy();
        return;
      }
      const status = reason === 'header-too-large' ? '431 Request Header Fields Too Large' : reason === 'header-timeout' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    });
    return server;
  }

  private drain(listener: Listener): void {
    this.open.delete(listener.spec.key);
    listener.server.close();
    const http = listener.server as HttpServer;
    if (typeof http.closeIdleConnections === 'function') http.closeIdleConnections();
    if (listener.sockets.size === 0) return;
    const timer = setTimeout(() => { for (const s of listener.sockets) s.destroy(); }, this.timeouts.drainTimeoutMs);
    timer.unref();
  }

  /** Stops accepting everywhere; open connections get `drainMs` to finish. Resolves when all are closed. */
  async closeAll(drainMs: number): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((listener) => new Promise<void>((resolve) => {
      const http = listener.server as HttpServer;
      const timer = setTimeout(() => {
        if (typeof http.closeAllConnections === 'function') http.closeAllConnections();
        for (const s of listener.sockets) s.destroy();
      }, drainMs);
      listener.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      if (typeof http.closeIdleConnections === 'function') http.closeIdleConnections();
    })));
  }
}
