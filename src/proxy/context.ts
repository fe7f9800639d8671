// What the HTTP and TCP forwarders share: settings, the health overlay, counters, upstream connections,
// and the per-service runtime state that survives routing-table swaps.
import type { Logger } from '../observability/logger.js';
import type { ProxyStats, ServiceCounters } from '../observability/stats.js';
import type { BackendHealth } from '../health/backend-health.js';
import type { Backend, Service } from '../routing/table.js';
import type { Balancer } from './balancer.js';
import type { UpstreamPool } from './http1/upstream.js';

export interface ProxySettings {
  connectTimeoutMs: number;
  clientTimeoutMs: number;
  serverTimeoutMs: number;
  tunnelTimeoutMs: number;
  httpRequestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  drainTimeoutMs: number;
  maxconn: number;
  maxconnPerService: number;
  accessLog: boolean;
  /** How long a backend that left keeps its counters (ProxyStats). */
  seriesRetentionMs: number;
}

export interface ServiceRuntime {
  service: Service;
  /** The backends new requests and connections may go to: the service's, less the draining ones (blue/green). */
  routable: Backend[];
  balancer: Balancer;
  counters: ServiceCounters;
  /** Requests (HTTP) or connections (TCP) in flight, for maxconn per service. */
  inFlight: number;
}

export interface ProxyContext {
  settings: ProxySettings;
  health: BackendHealth;
  stats: ProxyStats;
  /** Idle and busy HTTP connections to backends. */
  upstreams: UpstreamPool;
  log: Logger;
  /** Streams (TCP, WebSocket) per backend address, closed after the drain timeout when it leaves. */
  trackStream(address: string, close: () => void): () => void;
}
