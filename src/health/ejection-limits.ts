// Envoy's limits on taking backends out, decided once for the whole process tree (the primary sees
// every worker's ejections): an ejection cap (never more than a share of a service's backends out
// for passive failures) and a panic mode (when too few backends are up, route to all of them:
// spreading load over maybe-bad backends beats piling it on the few left).
import type { RoutingTable } from '../routing/table.js';

export interface EjectionLimits {
  /** At most this share (0-100) of a service's backends may be ejected for failures at once. */
  maxEjectionPercent: number;
  /** Below this share (0-100) of a service's backends up, every backend gets traffic; 0: never. */
  panicThresholdPercent: number;
}

export interface ServiceEjectionState {
  service: string;
  backends: number;
  /** Backends ejected for passive failures (by any worker). */
  ejected: number;
  /** How many of them may stay out under the cap. */
  ejectionCap: number;
  /** More were ejected than the cap allows; the excess gets traffic again. */
  capped: boolean;
  panic: boolean;
}

export interface EjectionDecision {
  /** Backends that get traffic although a reason takes them out: over the cap, or in a service in panic. */
  routable: Set<string>;
  services: ServiceEjectionState[];
}

/** Pure: the same table, reasons and limits always decide the same way (stable across ticks). */
export function decideEjections(table: RoutingTable | null, reasonsOf: (address: string) => readonly string[], limits: EjectionLimits): EjectionDecision {
  const routable = new Set<string>();
  const services: ServiceEjectionState[] = [];
  for (const service of table?.services ?? []) {
    const n = service.backends.length;
    if (n === 0) continue;
    const reasons = service.backends.map((b) => reasonsOf(b.address));
    if (reasons.every((r) => r.length === 0)) continue;
    const ejectionCap = Math.floor((n * limits.maxEjectionPercent) / 100);
    const ejected = service.backends.filter((_, i) => reasons[i]!.includes('ejected'));
    // The first ones (in table order) stay out; the rest are let back in.
    for (const b of ejected.slice(ejectionCap)) routable.add(b.address);
    const up = service.backends.filter((b, i) => reasons[i]!.length === 0 || routable.has(b.address)).length;
    const panic = up * 100 < limits.panicThresholdPercent * n;
    if (panic) for (const b of service.backends) routable.add(b.address);
    services.push({ service: service.id, backends: n, ejected: ejected.length, ejectionCap, capped: ejected.length > ejectionCap, panic });
  }
  return { routable, services };
}
