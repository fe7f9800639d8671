// TCP services: each client connection is tunnelled to one backend. A connect failure before any
// byte moved is retried once on another backend (HAProxy's redispatch).
import type { Socket } from 'node:net';
import type { Backend } from '../routing/table.js';
import type { ProxyContext, ServiceRuntime } from './context.js';
import { networkAllowed } from './http1/features.js';
import { tunnel } from './tunnel.js';

export function forwardTcp(ctx: ProxyContext, client: Socket, runtime: ServiceRuntime | null, listener: string): void {
  if (runtime === null) {
    client.destroy();
    return;
  }
  if (!networkAllowed(runtime.service, client.remoteAddress ?? '')) {
    // HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL: a refused connection, as HAProxy's tcp-request reject.
    ctx.stats.clientError(listener, 'network-denied');
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
  attempt(ctx, client, runtime, null);
}

function attempt(ctx: ProxyContext, client: Socket, runtime: ServiceRuntime, failed: Backend | null): void {
  const backend = runtime.balancer.pick(runtime.routable, ctx.health.isUp, client.remoteAddress ?? '', failed);
  if (backend === null || backend === failed) {
    ctx.stats.error(runtime.counters, 'no-backend');
    client.destroy();
    return;
  }
  if (client.destroyed) return;
  tunnel(ctx, runtime, backend, client, {
    onConnectFailure: () => {
      if (failed === null && !client.destroyed) attempt(ctx, client, runtime, backend);
      else client.destroy();
    },
  });
}
