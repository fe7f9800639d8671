// The messages between the primary (control plane) and proxy workers. Plain data only.
import type { LevelWithSilent } from 'pino';
import type { ServiceCounters, StatsSnapshot } from '../observability/stats.js';
import { ServiceOrder, type ServiceChange, type TableChange } from '../routing/changes.js';
import type { RoutingTable, Service } from '../routing/table.js';
import type { DataPlaneSetup, ListenFailure, ListenerStatus } from '../proxy/data-plane.js';
import type { DrainingBackend } from '../proxy/draining.js';

export type ToWorker =
  | { type: 'init'; setup: DataPlaneSetup; logLevel: LevelWithSilent }
  | { type: 'table'; table: RoutingTable }
  /**
   * What changed since the last table or delta: the services that are new or different, the ids
   * that left, and the order of all ids when the set of ids changed. Sending whole tables cost
   * tens of milliseconds per event at 1,000 apps.
   */
  | { type: 'delta'; generation: number; appCount: number; upsert: Service[]; removed: string[]; order: string[] | null }
  | { type: 'active'; address: string; up: boolean }
  /** The primary's ejection cap and panic decision, from every worker's ejections. */
  | { type: 'routable'; addresses: readonly string[] }
  | { type: 'stop'; drainMs: number };

/** A worker process's own resource use, for per-worker CPU, memory and event-loop lag. */
export interface WorkerProcessReport {
  pid: number;
  cpuSeconds: number;
  residentBytes: number;
  /** The 99th percentile event-loop delay over the last report interval. */
  eventLoopLagSeconds: number;
}

export interface WorkerReport {
  process: WorkerProcessReport;
  traffic: StatsSnapshot;
  draining: DrainingBackend[];
  /** Backends this worker has taken out itself (passive ejection), with the reasons. */
  down: Record<string, string[]>;
  listeners: ListenerStatus[];
}

export type FromWorker =
  /** Sent once the worker listens for messages: an ES module attaches its listener only after its imports load, and an IPC message sent before that is lost. */
  | { type: 'hello' }
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'applied'; generation: number; failures: ListenFailure[] }
  /** `traffic.services` holds only the services whose counters moved since the last report; `forgotten`, those gone. */
  | ({ type: 'report'; forgotten: string[] } & WorkerReport);

/** The change set as it crosses to a worker: the new or replaced services and the ids that left. */
export function deltaMessage({ table, services, idsChanged }: TableChange): ToWorker {
  return {
    type: 'delta', generation: table.generation, appCount: table.appCount,
    upsert: services.flatMap(([, after]) => (after ? [after] : [])),
    removed: services.flatMap(([before, after]) => (after ? [] : [before!.id])),
    order: idsChanged ? table.services.map((s) => s.id) : null,
  };
}

/**
 * A worker's copy of the table, kept from the primary's deltas, and the change set each delta
 * makes: the worker's proxy applies exactly the change the primary computed.
 */
export class WorkerTable {
  private readonly byId = new Map<string, Service>();
  private readonly order = new ServiceOrder();

  /** A whole table (a worker that starts late): every service it had before is replaced or removed. */
  replace(table: RoutingTable): TableChange {
    const ids = new Set(table.services.map((s) => s.id));
    return this.apply({ type: 'delta', generation: table.generation, appCount: table.appCount, upsert: table.services,
      removed: [...this.byId.keys()].filter((id) => !ids.has(id)), order: [...ids] });
  }

  apply(delta: Extract<ToWorker, { type: 'delta' }>): TableChange {
    const changes: ServiceChange[] = [];
    for (const id of delta.removed) {
      changes.push([this.byId.get(id), undefined]);
      this.byId.delete(id);
    }
    for (const service of delta.upsert) {
      changes.push([this.byId.get(service.id), service]);
      this.byId.set(service.id, service);
    }
    const services = delta.order ? this.order.reorder(delta.order.map((id) => this.byId.get(id)!)) : this.order.replace(delta.upsert);
    const table: RoutingTable = { generation: delta.generation, appCount: delta.appCount, services, warnings: [] };
    return { table, services: changes, idsChanged: delta.order !== null, warningsChanged: false };
  }
}

/**
 * A worker's side of the reports: each carries only the services whose counters moved since the
 * last one. A whole snapshot of 10,000 services every half second cost both event loops tens of
 * milliseconds (the two-worker convergence tail at 10,000 apps).
 */
export class TrafficReporter {
  /** A cheap fingerprint of each service's counters as last sent. */
  private readonly sent = new Map<string, string>();

  delta(snapshot: StatsSnapshot): { traffic: StatsSnapshot; forgotten: string[] } {
    const services: Record<string, ServiceCounters> = {};
    for (const [id, counters] of Object.entries(snapshot.services)) {
      const print = fingerprint(counters);
      if (this.sent.get(id) === print) continue;
      this.sent.set(id, print);
      services[id] = counters;
    }
    const forgotten = [...this.sent.keys()].filter((id) => snapshot.services[id] === undefined);
    for (const id of forgotten) this.sent.delete(id);
    return { traffic: { ...snapshot, services }, forgotten };
  }
}

function fingerprint(c: ServiceCounters): string {
  let tcp = 0;
  for (const b of Object.values(c.backends)) tcp += b.tcpConnections;
  const errors = Object.values(c.errors).reduce((a, n) => a + (n ?? 0), 0);
  // The backends by name: one replaced by another in the same interval leaves the count as it was.
  return `${c.durationCount}|${c.receivedBytes}|${c.sentBytes}|${errors}|${tcp}|${Object.keys(c.backends).join(',')}`;
}

/** The primary's side: a worker's whole snapshot, from the last one and a report's changes. */
export function withTrafficDelta(previous: StatsSnapshot | undefined, delta: StatsSnapshot, forgotten: readonly string[]): StatsSnapshot {
  // The previous services object belongs to this worker's entry alone: updated in place.
  const services = previous?.services ?? {};
  for (const id of forgotten) delete services[id];
  Object.assign(services, delta.services);
  return { ...delta, services };
}
