// HTTP forwarding: one request to one backend through its undici pool, streaming both ways.
// The request path allocates one handler object per request and reads the routing state it was
// given; it never waits on the control plane.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { classifyBackendError, type FailureKind } from '../observability/failure.js';
import type { Backend } from '../routing/table.js';
import type { ProxyContext, ServiceRuntime } from './context.js';
import { addStickyCookie, stickyBackend, withoutStickyCookie } from './sticky.js';
import { tunnel } from './tunnel.js';

/**
 * Hop-by-hop headers (RFC 9110 7.6.1) and ones Turbine sets itself. `expect` too: Node's server has
 * already answered the client's 100-continue, and undici refuses to send the header.
 */
const REQUEST_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect',
  'proxy-authorization', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port']);
const RESPONSE_DROP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer', 'te'];
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export interface ClientInfo {
  /** The listener's key, for client-error counters. */
  listener: string;
  address: string;
  proto: 'http' | 'https';
  port: number;
}

function clientInfo(req: IncomingMessage, listener: string, proto: 'http' | 'https'): ClientInfo {
  return { listener, address: req.socket.remoteAddress ?? '', proto, port: req.socket.localPort ?? 0 };
}

/** Errors undici raises for a request it refuses to send: the client's request, not the backend, is at fault. */
const REFUSED_REQUEST_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

/**
 * Why Turbine refuses a request before it reaches a backend, or null. Two Host headers are a 400
 * (RFC 9112 3.2); a target that is not origin-form cannot be sent on by this path.
 */
function refusal(req: IncomingMessage): string | null {
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts += 1;
  if (hosts > 1) return 'Bad Request: more than one Host header\n';
  if (!(req.url ?? '/').startsWith('/')) return 'Bad Request: only origin-form request targets are forwarded\n';
  return null;
}

/** Request headers for the backend: hop-by-hop removed, X-Forwarded-* added (HAProxy's option forwardfor). */
export function forwardedHeaders(req: IncomingMessage, client: ClientInfo, keepUpgrade: boolean, stripSticky = false): string[] {
  const raw = req.rawHeaders;
  const connectionTokens = req.headers.connection ? req.headers.connection.toLowerCase().split(',').map((t) => t.trim()) : null;
  const out: string[] = [];
  let xff: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'x-forwarded-for') {
      xff = xff === null ? raw[i + 1]! : `${xff}, ${raw[i + 1]}`;
      continue;
    }
    if (keepUpgrade && (lower === 'connection' || lower === 'upgrade')) {
      out.push(name, raw[i + 1]!);
      continue;
    }
    if (REQUEST_DROP.has(lower) || (connectionTokens !== null && connectionTokens.includes(lower))) continue;
    if (stripSticky && lower === 'cookie') {
      const rest = withoutStickyCookie(raw[i + 1]!);
      if (rest !== null) out.push(name, rest);
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  out.push('x-forwarded-for', xff === null ? client.address : `${xff}, ${client.address}`);
  out.push('x-forwarded-proto', client.proto, 'x-forwarded-port', String(client.port));
  if (req.headers.host) out.push('x-forwarded-host', req.headers.host);
  return out;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

const STATUS_FOR: Record<FailureKind, number> = { connect: 503, timeout: 504, reset: 502, 'no-backend': 503, maxconn: 503 };
const TEXT_FOR: Record<FailureKind, string> = {
  connect: 'Service Unavailable: could not connect to a backend\n',
  timeout: 'Gateway Timeout: the backend did not answer in time\n',
  reset: 'Bad Gateway: the backend closed the connection\n',
  'no-backend': 'Service Unavailable: no live backend for this service\n',
  maxconn: 'Service Unavailable: too many requests in flight for this service\n',
};

const HOST_HEADER = /^[a-z0-9.-]+(:\d+)?$|^\[[0-9a-f:.]+\](:\d+)?$/i;

/** 301 to the same host and path over https (marathon-lb's HAPROXY_{n}_REDIRECT_TO_HTTPS). */
export function redirectToHttps(req: IncomingMessage, res: ServerResponse, httpsPort: number): void {
  const host = req.headers.host ?? '';
  // The Host header is client input: only a plain host name goes into a Location header.
  if (!HOST_HEADER.test(host)) {
    sendError(res, 400, 'Bad Request: invalid Host header\n');
    return;
  }
  const hostname = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  const location = `https://${hostname}${httpsPort === 443 ? '' : `:${httpsPort}`}${req.url ?? '/'}`;
  res.writeHead(301, { location, 'content-length': 0, 'cache-control': 'no-store' });
  res.end();
}

export function sendError(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function uncork(res: ServerResponse): void {
  res.socket?.uncork();
}

class ForwardHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private sent = 0;
  private done = false;
  private readonly startedAt = performance.now();

  constructor(
    private readonly forwarder: HttpForwarder,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly runtime: ServiceRuntime,
    private readonly backend: Backend,
    private readonly client: ClientInfo,
    private readonly attempt: number,
    private readonly setStickyCookie: boolean,
  ) {
    res.once('close', this.onClientClose);
  }

  private readonly onClientClose = () => {
    if (!this.done && this.controller && !this.controller.aborted) this.controller.abort(new Error('client closed the connection'));
    if (!this.done) this.finish(499);
  };

  private readonly resume = () => this.controller?.resume();

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.res.destroyed) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    for (const name of RESPONSE_DROP) if (headers[name] !== undefined) delete headers[name];
    if (this.setStickyCookie) addStickyCookie(headers, this.backend);
    if (this.res.destroyed) return;
    this.res.writeHead(statusCode, statusMessage, headers as Record<string, string | string[]>);
    // Head, body and end of a small response usually arrive in one tick: corked, they leave in one
    // write instead of several (the profile showed writes dominating the request path).
    this.res.socket?.cork();
    process.nextTick(uncork, this.res);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.sent += chunk.length;
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', this.resume);
    }
  }

  onResponseEnd(): void {
    this.res.end();
    this.forwarder.context.health.reportSuccess(this.backend.address);
    this.finish(this.res.statusCode);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.done) return;
    const kind = classifyBackendError(err);
    const ctx = this.forwarder.context;
    if (this.res.destroyed || this.req.destroyed && !this.req.complete) {
      this.finish(499);
      return;
    }
    if (REFUSED_REQUEST_CODES.has((err as { code?: string }).code ?? '')) {
      // The request never left Turbine: the backend is not at fault, and no other backend would do better.
      ctx.stats.clientError(this.client.listener, 'bad-request');
      sendError(this.res, 400, `Bad Request: ${err.message}\n`);
      this.finish(400);
      return;
    }
    ctx.health.reportFailure(this.backend.address);
    ctx.stats.error(this.runtime.counters, kind);
    ctx.log.debug({ appId: this.backend.appId, taskId: this.backend.taskId, backend: this.backend.address, service: this.runtime.service.id, kind, err: err.message }, 'backend request failed');
    const retryable = (kind === 'connect' || kind === 'reset') && this.attempt === 0 && !this.res.headersSent
      && IDEMPOTENT.has(this.req.method ?? '') && !hasBody(this.req);
    const other = retryable ? this.runtime.balancer.pick(this.runtime.service.backends, ctx.health.isUp, this.client.address, this.backend) : null;
    if (other !== null && other !== this.backend) {
      // Nothing came back and the method is idempotent: another backend may take it (HAProxy's
      // redispatch with retry-on conn-failure/empty-response; Envoy's retry_on reset). A backend
      // that closes a reused keep-alive connection as it is killed is the common case.
      this.release();
      this.done = true;
      this.res.off('close', this.onClientClose);
      this.forwarder.forward(this.req, this.res, this.runtime, this.client, 1, other);
      return;
    }
    // No other live backend: the client hears what actually went wrong.
    if (!this.res.headersSent) sendError(this.res, STATUS_FOR[kind], TEXT_FOR[kind]);
    else this.res.destroy(err);
    this.finish(this.res.headersSent ? this.res.statusCode : STATUS_FOR[kind]);
  }

  private release(): void {
    this.runtime.balancer.release(this.backend.address);
    this.runtime.inFlight -= 1;
  }

  private finish(status: number): void {
    if (this.done) return;
    this.done = true;
    this.release();
    const ctx = this.forwarder.context;
    const seconds = (performance.now() - this.startedAt) / 1000;
    ctx.stats.request(this.runtime.counters, this.backend.address, status, seconds);
    this.runtime.counters.sentBytes += this.sent;
    // Request bodies are counted by their declared length: undici consumes the stream itself.
    this.runtime.counters.receivedBytes += Number(this.req.headers['content-length'] ?? 0) || 0;
    if (ctx.settings.accessLog) {
      ctx.log.info({ service: this.runtime.service.id, appId: this.backend.appId, taskId: this.backend.taskId, backend: this.backend.address,
        method: this.req.method, path: this.req.url, status, durationMs: Math.round(seconds * 1e4) / 10, bytes: this.sent, client: this.client.address }, 'access');
    }
  }
}

export class HttpForwarder {
  constructor(readonly context: ProxyContext) {}

  /** Routes one request to the service's backends; `runtime` null means no service matched. */
  handle(req: IncomingMessage, res: ServerResponse, runtime: ServiceRuntime | null, listener: string, proto: 'http' | 'https', notFound: string): void {
    if (runtime === null) {
      sendError(res, 404, notFound);
      return;
    }
    const refused = refusal(req);
    if (refused !== null) {
      this.context.stats.clientError(listener, 'bad-request');
      sendError(res, 400, refused);
      return;
    }
    const limit = this.context.settings.maxconnPerService;
    if (limit > 0 && runtime.inFlight >= limit) {
      this.context.stats.error(runtime.counters, 'maxconn');
      sendError(res, STATUS_FOR.maxconn, TEXT_FOR.maxconn);
      return;
    }
    this.forward(req, res, runtime, clientInfo(req, listener, proto), 0, null);
  }

  /** Sends the request to `chosen`, or to the balancer's pick when null. */
  forward(req: IncomingMessage, res: ServerResponse, runtime: ServiceRuntime, client: ClientInfo, attempt: number, chosen: Backend | null): void {
    const ctx = this.context;
    const sticky = runtime.service.sticky;
    const named = sticky && chosen === null ? stickyBackend(req.headers.cookie, runtime.service.backends, ctx.health.isUp) : null;
    const backend = chosen ?? named ?? runtime.balancer.pick(runtime.service.backends, ctx.health.isUp, client.address);
    if (backend === null) {
      ctx.stats.error(runtime.counters, 'no-backend');
      ctx.stats.request(runtime.counters, 'none', 503, 0);
      sendError(res, 503, TEXT_FOR['no-backend']);
      return;
    }
    runtime.balancer.acquire(backend.address);
    runtime.inFlight += 1;
    const handler = new ForwardHandler(this, req, res, runtime, backend, client, attempt, sticky && backend !== named);
    const body = hasBody(req) ? req : null;
    ctx.pools.get(backend.address, backend.host, backend.port).dispatch({
      path: req.url ?? '/',
      method: req.method as Dispatcher.HttpMethod,
      headers: forwardedHeaders(req, client, false, sticky),
      body,
      idempotent: false,
      blocking: false,
    }, handler);
  }

  /** WebSocket and other upgrades: a raw tunnel to the backend after the request head is replayed. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, runtime: ServiceRuntime | null, listener: string, proto: 'http' | 'https'): void {
    const ctx = this.context;
    const client = clientInfo(req, listener, proto);
    const backend = runtime?.balancer.pick(runtime.service.backends, ctx.health.isUp, client.address) ?? null;
    if (!runtime || !backend) {
      socket.end(`HTTP/1.1 ${runtime ? 503 : 404} ${runtime ? 'Service Unavailable' : 'Not Found'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    const headers = forwardedHeaders(req, client, true);
    let requestHead = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) requestHead += `${headers[i]}: ${headers[i + 1]}\r\n`;
    socket.on('error', () => socket.destroy());
    tunnel(ctx, runtime, backend, socket as Socket, {
      preamble: head.length > 0 ? [requestHead + '\r\n', head] : [requestHead + '\r\n'],
      onConnectFailure: () => socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'),
    });
  }
}
