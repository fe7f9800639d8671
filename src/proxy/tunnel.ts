// A byte tunnel between a client socket and one backend, for TCP services (an HTTP upgrade's
// tunnel is the HTTP connection's own). Connect timeout, then the tunnel timeout; half-close preserved;
// the stream is tracked so it can be closed after the drain timeout when its backend leaves.
import { connect, type Socket } from 'node:net';
import { classifyBackendError } from '../observability/failure.js';
import type { Backend } from '../routing/table.js';
import { reusedReadBuffer } from './read-buffer.js';
import { resetSocket } from './raw-socket.js';
import type { ProxyContext, ServiceRuntime } from './context.js';

export interface TunnelHooks {
  /** The backend could not be reached; nothing moved and the tunnel released everything. */
  onConnectFailure(err: Error): void;
}

export function tunnel(ctx: ProxyContext, runtime: ServiceRuntime, backend: Backend, client: Socket, hooks: TunnelHooks): void {
  runtime.balancer.acquire(backend.address);
  // Backpressure by hand rather than pipe(): the backend's bytes come in a reused read buffer.
  const upstream: Socket = connect({ host: backend.host, port: backend.port, allowHalfOpen: true,
    onread: reusedReadBuffer((chunk) => { if (!client.write(chunk)) upstream.pause(); }, () => client) });
  upstream.setTimeout(ctx.settings.connectTimeoutMs);
  let connected = false;
  let released = false;
  const untrack = ctx.trackStream(backend.address, () => { client.destroy(); upstream.destroy(); });
  const release = (): boolean => {
    if (released) return false;
    released = true;
    untrack();
    runtime.balancer.release(backend.address);
    return true;
  };
  const finish = () => {
    if (!release()) return;
    client.destroy();
    upstream.destroy();
    runtime.counters.receivedBytes += client.bytesRead;
    runtime.counters.sentBytes += client.bytesWritten;
    if (ctx.settings.accessLog) {
      ctx.log.info({ service: runtime.service.id, appId: backend.appId, taskId: backend.taskId, backend: backend.address,
        client: client.remoteAddress, bytesIn: client.bytesRead, bytesOut: client.bytesWritten }, 'tunnel closed');
    }
  };
  const fail = (err: Error) => {
    if (connected || released) {
      // The backend's stream was cut: so is the client's, not ended as if it were complete (an idle timeout only closes).
      if (!released && (err as NodeJS.ErrnoException).code !== 'ERR_TURBINE_TIMEOUT') resetSocket(client);
      finish();
      return;
    }
    const kind = classifyBackendError(err);
    ctx.health.reportFailure(backend.address);
    ctx.stats.error(runtime.counters, kind);
    ctx.log.debug({ appId: backend.appId, taskId: backend.taskId, backend: backend.address, service: runtime.service.id, kind, err: err.message }, 'backend connect failed');
    release();
    upstream.destroy();
    hooks.onConnectFailure(err);
  };
  upstream.once('connect', () => {
    connected = true;
    upstream.setTimeout(ctx.settings.tunnelTimeoutMs);
    client.setTimeout(ctx.settings.tunnelTimeoutMs);
    ctx.health.reportSuccess(backend.address);
    ctx.stats.tcpConnection(runtime.counters, backend.address);
    client.on('data', (chunk: Buffer) => { if (!upstream.write(chunk)) client.pause(); });
    upstream.on('drain', () => client.resume());
    client.on('drain', () => upstream.resume());
    // A client that half-closed while the backend was connecting has already had its 'end'.
    if (client.readableEnded) upstream.end();
    else client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.resume();
  });
  upstream.on('error', fail);
  upstream.on('timeout', () => fail(Object.assign(new Error(connected ? 'tunnel idle timeout' : 'connect timeout'), { code: 'ERR_TURBINE_TIMEOUT' })));
  // A side that closed cleanly did so after both its ends: the other still sends what it holds and
  // then closes on its own (or its tunnel timeout cuts it), and the tunnel is done when both are.
  // Destroying it at once threw away up to a read buffer of bytes, and its peer saw a clean end.
  // A client that failed is the backend's to hear of as a reset (HAProxy resets toward the server).
  let clientClosed = false;
  let upstreamClosed = false;
  upstream.on('close', (hadError: boolean) => {
    if (!connected) return;
    upstreamClosed = true;
    if (hadError || clientClosed || !client.readableEnded) finish();
  });
  client.on('close', (hadError: boolean) => {
    clientClosed = true;
    if (hadError && connected && !upstream.destroyed) upstream.resetAndDestroy();
    if (hadError || upstreamClosed || !connected || !upstream.readableEnded) finish();
  });
  client.on('timeout', finish);
}
