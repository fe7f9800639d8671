// The messages between the primary (control plane) and proxy workers. Plain data only.
import type { LevelWithSilent } from 'pino';
import type { StatsSnapshot } from '../observability/stats.js';
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
  | ({ type: 'report' } & WorkerReport);
