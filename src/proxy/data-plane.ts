// What the control plane needs from the data plane, whether it runs in this process (Proxy) or in
// worker processes (ProxyWorkers). Everything crossing this interface is plain data.
import type { StatsSnapshot } from '../observability/stats.js';
import type { TableChange } from '../routing/changes.js';
import type { LabelWarning } from '../routing/labels.js';
import type { ProxySettings } from './context.js';
import type { DrainingBackend } from './draining.js';

export interface FixedPorts {
  bind: string;
  httpPort: number | null;
  httpsPort: number | null;
  appidPort: number | null;
}

export interface ListenerStatus {
  key: string;
  kind: string;
  error: string | null;
  /**
   * Certificates this listener could not load, as label warnings (shown in /routes): with an error,
   * the port is refused for them (an app's mistake: the health check ignores it); without, only some
   * virtual hosts of the HTTPS listener are.
   */
  certificateWarnings?: LabelWarning[];
}

export interface ListenFailure {
  key: string;
  reason: 'in-use' | 'privileged' | 'other';
  message: string;
}

/** Everything a data plane needs to start, as plain data (a worker receives it in a message). */
export interface DataPlaneSetup {
  settings: ProxySettings;
  fixed: FixedPorts;
  sslCerts: string[];
  ejectAfterFailures: number;
  ejectMs: number;
}

export interface DataPlane {
  /** Opens the fixed listeners; a failure is fatal for the caller. */
  start(): Promise<void>;
  /** Serves the change's table; resolves with the listeners that newly failed to open. */
  apply(change: TableChange): Promise<ListenFailure[]>;
  /** An active health check result from the control plane. */
  setActive(address: string, up: boolean): void;
  /** Backends routed to despite their reasons: the control plane's ejection cap and panic decision. */
  setRoutable(addresses: readonly string[]): void;
  /** Why a backend gets no new traffic (active-check, ejected); empty when it does. */
  downReasons(address: string): string[];
  listenerStatus(): ListenerStatus[];
  drainingBackends(): DrainingBackend[];
  traffic(): StatsSnapshot;
  stop(drainMs: number): Promise<void>;
}
