// Traffic counters kept as plain numbers: the request path only adds to fields of objects it
// already holds. /metrics and the status page read them; with workers, each worker's snapshot is
// plain data that crosses the process boundary and is summed by the primary.
import type { FailureKind } from './failure.js';

export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export interface BackendCounters {
  /** HTTP responses by status class, indexed as STATUS_CLASSES. */
  responses: number[];
  tcpConnections: number;
}

export interface ServiceCounters {
  backends: Record<string, BackendCounters>;
  receivedBytes: number;
  sentBytes: number;
  errors: Partial<Record<FailureKind, number>>;
  /** Cumulative-free bucket counts (one per DURATION_BUCKETS entry, plus +Inf last). */
  durationBuckets: number[];
  durationSum: number;
  durationCount: number;
}

export interface StatsSnapshot {
  services: Record<string, ServiceCounters>;
  activeConnections: Record<string, number>;
  /** Requests (HTTP) and streams (TCP, WebSocket) in flight by service id, then backend address: HAProxy's scur. */
  inFlight: Record<string, Record<string, number>>;
  clientErrors: Record<string, number>;
  /** Certificate file loads that failed, by `path|reason`. */
  certificateErrors?: Record<string, number>;
}

export function emptySnapshot(): StatsSnapshot {
  return { services: {}, activeConnections: {}, inFlight: {}, clientErrors: {} };
}

/** The counters without the gauges: what a worker that died leaves to the totals. */
export function countersOnly(snapshot: StatsSnapshot): StatsSnapshot {
  return { ...snapshot, activeConnections: {}, inFlight: {} };
}

export function emptyServiceCounters(): ServiceCounters {
  return {
    backends: {}, receivedBytes: 0, sentBytes: 0, errors: {},
    durationBuckets: new Array(DURATION_BUCKETS.length + 1).fill(0), durationSum: 0, durationCount: 0,
  };
}

/** The backend a request is counted against when no backend was live to take it. */
export const NO_BACKEND = 'none';

/**
 * A backend's counters, made when it enters the table (or, for NO_BACKEND, at its first count), kept for a while
 * after it left (ProxyStats' retention); undefined after that. A request that ends later still is not counted:
 * counted, it would make the series again, for good (every deploy under traffic would leave one behind).
 */
function backendCounters(service: ServiceCounters, backend: string): BackendCounters | undefined {
  const counters = service.backends[backend];
  if (counters !== undefined || backend !== NO_BACKEND) return counters;
  return (service.backends[backend] = newBackendCounters());
}

function newBackendCounters(): BackendCounters {
  return { responses: [0, 0, 0, 0, 0], tcpConnections: 0 };
}

export class ProxyStats {
  private data: Omit<StatsSnapshot, 'inFlight'> = { services: {}, activeConnections: {}, clientErrors: {} };
  /** Backends that left, by service id then address, with when their counters go (performance.now()). */
  private readonly leaving = new Map<string, Map<string, number>>();
  private sweeper: NodeJS.Timeout | null = null;

  /**
   * `retainMs`: how long a backend that left keeps its counters, so that a scrape sees what it
   * counted last, the errors of requests still in flight when it was killed included.
   */
  constructor(private readonly retainMs = 0) {}

  service(id: string): ServiceCounters {
    let counters = this.data.services[id];
    if (!counters) {
      counters = emptyServiceCounters();
      this.data.services[id] = counters;
    }
    return counters;
  }

  request(service: ServiceCounters, backend: string, status: number, seconds: number): void {
    const index = Math.min(Math.max(Math.floor(status / 100) - 1, 0), 4);
    const counters = backendCounters(service, backend);
    if (counters !== undefined) counters.responses[index]! += 1;
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]!) bucket += 1;
    service.durationBuckets[bucket]! += 1;
    service.durationSum += seconds;
    service.durationCount += 1;
  }

  tcpConnection(service: ServiceCounters, backend: string): void {
    const counters = backendCounters(service, backend);
    if (counters !== undefined) counters.tcpConnections += 1;
  }

  error(service: ServiceCounters, kind: FailureKind): void {
    service.errors[kind] = (service.errors[kind] ?? 0) + 1;
  }

  connectionOpened(listener: string): void {
    this.data.activeConnections[listener] = (this.data.activeConnections[listener] ?? 0) + 1;
  }

  connectionClosed(listener: string): void {
    this.data.activeConnections[listener] = (this.data.activeConnections[listener] ?? 1) - 1;
  }

  clientError(listener: string, reason: string): void {
    const key = `${listener}|${reason}`;
    this.data.clientErrors[key] = (this.data.clientErrors[key] ?? 0) + 1;
  }

  certificateError(path: string, reason: string): void {
    const errors = (this.data.certificateErrors ??= {});
    const key = `${path}|${reason}`;
    errors[key] = (errors[key] ?? 0) + 1;
  }

  /** A service left the table: its series go with it, so label sets stay bounded. */
  forgetService(id: string): void {
    delete this.data.services[id];
    this.leaving.delete(id);
  }

  /** A backend entered the service's table: its series start (at zero when it is new), or stay if it had just left. */
  addBackend(service: string, backend: string): void {
    this.leaving.get(service)?.delete(backend);
    this.service(service).backends[backend] ??= newBackendCounters();
  }

  /** A backend left the service's table: its series go after the retention time. */
  forgetBackend(service: string, backend: string): void {
    if (this.retainMs <= 0) {
      this.dropBackend(service, backend);
      return;
    }
    let backends = this.leaving.get(service);
    if (backends === undefined) this.leaving.set(service, (backends = new Map()));
    backends.set(backend, performance.now() + this.retainMs);
    this.sweepLater();
  }

  private dropBackend(service: string, backend: string): void {
    const counters = this.data.services[service];
    if (counters) delete counters.backends[backend];
  }

  private sweepLater(): void {
    if (this.sweeper !== null) return;
    this.sweeper = setTimeout(() => {
      this.sweeper = null;
      const now = performance.now();
      for (const [service, backends] of this.leaving) {
        for (const [backend, at] of backends) {
          if (at > now) continue;
          this.dropBackend(service, backend);
          backends.delete(backend);
        }
        if (backends.size === 0) this.leaving.delete(service);
      }
      if (this.leaving.size > 0) this.sweepLater();
    }, Math.max(100, this.retainMs / 4));
    this.sweeper.unref();
  }

  /** `inFlight` comes from the balancers, which count it to balance. */
  snapshot(inFlight: StatsSnapshot['inFlight']): StatsSnapshot {
    return { ...this.data, inFlight };
  }
}

type TableShape = { services: readonly { id: string; backends: readonly { address: string }[] }[] };

/** Each table's backend addresses by service, made once per table: withinTable runs at every scrape. */
const addressesOf = new WeakMap<TableShape, Map<string, Set<string>>>();

function tableAddresses(table: TableShape): Map<string, Set<string>> {
  let byService = addressesOf.get(table);
  if (byService === undefined) {
    byService = new Map(table.services.map((s) => [s.id, new Set([NO_BACKEND, ...s.backends.map((b) => b.address)])]));
    addressesOf.set(table, byService);
  }
  return byService;
}

/**
 * The counters of `snapshot` for what `table` still holds (its services and their backends), and
 * for the backends of those services that one of `kept` still counts (a backend that left stays
 * for the retention time in each ProxyStats): the series of what left go, when theirs do. Walks
 * the snapshot (a dead worker's counts: often empty), not the table.
 */
export function withinTable(snapshot: StatsSnapshot, table: TableShape, kept: readonly StatsSnapshot[] = []): StatsSnapshot {
  const byService = tableAddresses(table);
  const services: Record<string, ServiceCounters> = {};
  for (const [id, counters] of Object.entries(snapshot.services)) {
    const routed = byService.get(id);
    if (routed === undefined) continue;
    const backends: Record<string, BackendCounters> = {};
    for (const [address, b] of Object.entries(counters.backends)) {
      if (routed.has(address) || kept.some((k) => k.services[id]?.backends[address] !== undefined)) backends[address] = b;
    }
    services[id] = { ...counters, backends };
  }
  return { ...snapshot, services };
}

/** Sums snapshots (each worker's) into one, for /metrics and the status page. */
export function mergeSnapshots(snapshots: readonly StatsSnapshot[]): StatsSnapshot {
  const out = emptySnapshot();
  for (const snap of snapshots) {
    for (const [id, s] of Object.entries(snap.services)) {
      const t = (out.services[id] ??= emptyServiceCounters());
      t.receivedBytes += s.receivedBytes;
      t.sentBytes += s.sentBytes;
      t.durationSum += s.durationSum;
      t.durationCount += s.durationCount;
      s.durationBuckets.forEach((n, i) => { t.durationBuckets[i]! += n; });
      for (const [kind, n] of Object.entries(s.errors)) t.errors[kind as FailureKind] = (t.errors[kind as FailureKind] ?? 0) + (n ?? 0);
      for (const [backend, b] of Object.entries(s.backends)) {
        const tb = (t.backends[backend] ??= newBackendCounters());
        tb.tcpConnections += b.tcpConnections;
        b.responses.forEach((n, i) => { tb.responses[i]! += n; });
      }
    }
    for (const [k, n] of Object.entries(snap.activeConnections)) out.activeConnections[k] = (out.activeConnections[k] ?? 0) + n;
    for (const [service, backends] of Object.entries(snap.inFlight)) {
      const t = (out.inFlight[service] ??= {});
      for (const [backend, n] of Object.entries(backends)) t[backend] = (t[backend] ?? 0) + n;
    }
    for (const [k, n] of Object.entries(snap.clientErrors)) out.clientErrors[k] = (out.clientErrors[k] ?? 0) + n;
    for (const [k, n] of Object.entries(snap.certificateErrors ?? {})) (out.certificateErrors ??= {})[k] = (out.certificateErrors[k] ?? 0) + n;
  }
  return out;
}

/** The duration below which `quantile` of the observations fall, read off the buckets (upper bound). */
export function quantileFromBuckets(buckets: readonly number[], quantile: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = quantile * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i += 1) {
    seen += buckets[i]!;
    if (seen >= rank) return i < DURATION_BUCKETS.length ? DURATION_BUCKETS[i]! : Infinity;
  }
  return Infinity;
}
