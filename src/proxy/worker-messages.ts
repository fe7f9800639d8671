// The messages between the primary (control plane) and proxy workers. Plain data only.
import type { LevelWithSilent } from 'pino';
import type { StatsSnapshot } from '../observability/stats.js';
import type { RoutingTable } from '../routing/table.js';
import type { DataPlaneSetup, ListenFailure, ListenerStatus } from './data-plane.js';
import type { DrainingBackend } from './draining.js';

export type ToWorker =
  | { type: 'init'; setup: DataPlaneSetup; logLevel: LevelWithSilent }
  | { type: 'table'; table: RoutingTable }
  | { type: 'active'; address: string; up: boolean }
  | { type: 'stop'; drainMs: number };

export interface WorkerReport {
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
