// TCP forwarding: pipe a client connection to one backend, both ways, half-close preserved.
// A connect failure before any byte moved is retried once on another backend (HAProxy's redispatch).
import { connect, type Socket } from 'node:net';
import { classifyBackendError } from '../observability/failure.js';
import type { Backend } from '../routing/table.js';
import type { ProxyContext, ServiceRuntime } from './context.js';

export function forwardTcp(ctx: ProxyContext, client: Socket, runtime: ServiceRuntime | null): void {
  if (runtime === null) {
    client.destroy();
    return;
  }
  const limit = ctx.settings.maxconnPerService;
  if (limit > 0 && runtime.inFlight >= limit) {
    ctx.stats.error(runtime.counters, 'maxconn');
    client.destroy();
    return;
  }
  client.on('error', () => client.destroy());
  client.pause();
  runtime.inFlight += 1;
  client.once('close', () => { runtime.inFlight -= 1; });
  attempt(ctx, client, runtime, 0, null);
}

function attempt(ctx: ProxyContext, client: Socket, runtime: ServiceRuntime, tries: number, avoid: Backend | null): void {
  const address = client.remoteAddress ?? '';
  const backend = runtime.balancer.pick(runtime.service.backends, ctx.health.isUp, address, avoid);
  if (backend === null || (tries > 0 && backend === avoid)) {
    ctx.stats.error(runtime.counters, 'no-backend');
    client.destroy();
    return;
  }
  if (client.destroyed) return;
  runtime.balancer.acquire(backend.address);
  const upstream = connect({ host: backend.host, port: backend.port, allowHalfOpen: true });
  upstream.setTimeout(ctx.settings.connectTimeoutMs);
  let connected = false;
  let finished = false;
  const untrack = ctx.trackStream(backend.address, () => { client.destroy(); upstream.destroy(); });
  const finish = () => {
    if (finished) return;
    finished = true;
    untrack();
    runtime.balancer.release(backend.address);
    client.destroy();
    upstream.destroy();
    runtime.counters.receivedBytes += client.bytesRead;
    runtime.counters.sentBytes += client.bytesWritten;
    if (ctx.settings.accessLog) {
      ctx.log.info({ service: runtime.service.id, appId: backend.appId, taskId: backend.taskId, backend: backend.address,
        client: address, bytesIn: client.bytesRead, bytesOut: client.bytesWritten }, 'tcp connection closed');
    }
  };
  upstream.once('connect', () => {
    connected = true;
    upstream.setTimeout(ctx.settings.tunnelTimeoutMs);
    client.setTimeout(ctx.settings.tunnelTimeoutMs);
    ctx.health.reportSuccess(backend.address);
    ctx.stats.tcpConnection(runtime.counters, backend.address);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  const fail = (err: Error) => {
    if (!connected) {
      ctx.health.reportFailure(backend.address);
      const kind = classifyBackendError(err);
      ctx.stats.error(runtime.counters, kind);
      ctx.log.warn({ appId: backend.appId, taskId: backend.taskId, backend: backend.address, service: runtime.service.id, kind, err: err.message }, 'backend connect failed');
      if (tries === 0 && !client.destroyed) {
        finished = true;
        untrack();
        runtime.balancer.release(backend.address);
        upstream.destroy();
        attempt(ctx, client, runtime, 1, backend);
        return;
      }
    }
    finish();
  };
  upstream.on('error', fail);
  upstream.on('timeout', () => fail(Object.assign(new Error(connected ? 'tunnel idle timeout' : 'connect timeout'), { code: 'ERR_TURBINE_TIMEOUT' })));
  client.on('timeout', finish);
  // Both halves closed (or one side destroyed): release everything.
  upstream.on('close', () => { if (connected || !finished) finish(); });
  client.on('close', finish);
}
