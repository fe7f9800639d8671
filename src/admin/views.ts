// What /routes, /stats and /haproxy?stats;csv show: the live table joined with the data plane's
// backend state and traffic counters.
import type { EjectionDecision } from '../health/ejection-limits.js';
import type { MarathonApp } from '../marathon/decode.js';
import { quantileFromBuckets } from '../observability/stats.js';
import type { DataPlane } from '../proxy/data-plane.js';
import type { RoutingTable } from '../routing/table.js';
import { renderHaproxyCsv, type CsvOptions } from './haproxy-csv.js';

/** "Up" means it gets new traffic: no reason takes it out, or the cap or panic lets it back in. */
function getsTraffic(plane: DataPlane, ejection: EjectionDecision, address: string): boolean {
  return plane.downReasons(address).length === 0 || ejection.routable.has(address);
}

export function routesView(table: RoutingTable | null, plane: DataPlane, ejection: EjectionDecision) {
  if (!table) return { generation: 0, services: [], warnings: [] };
  const limits = new Map(ejection.services.map((e) => [e.service, e]));
  return {
    generation: table.generation,
    apps: table.appCount,
    // Made as /routes writes them, a slice at a time.
    services: (function* () {
      for (const s of table.services) {
        yield {
          ...s,
          panic: limits.get(s.id)?.panic ?? false,
          ejectionCapped: limits.get(s.id)?.capped ?? false,
          backends: s.backends.map((b) => ({ ...b, state: getsTraffic(plane, ejection, b.address) ? 'up' : 'down', reasons: plane.downReasons(b.address) })),
        };
      }
    })(),
    // Certificates are loaded by the data plane: a routing table cannot know a file is unreadable.
    warnings: [...table.warnings, ...plane.listenerStatus().flatMap((l) => l.certificateWarnings ?? [])],
  };
}

export function statsView(table: RoutingTable | null, plane: DataPlane, marathon: unknown) {
  const snapshot = plane.traffic();
  return {
    now: Date.now(),
    marathon,
    generation: table?.generation ?? 0,
    services: (table?.services ?? []).map((s) => {
      const c = snapshot.services[s.id];
      const responses = Object.values(c?.backends ?? {}).reduce((acc, b) => acc.map((n, i) => n + b.responses[i]!), [0, 0, 0, 0, 0]);
      return {
        id: s.id,
        requests: c?.durationCount ?? 0,
        errors: Object.values(c?.errors ?? {}).reduce((a, b) => a + (b ?? 0), 0),
        responses,
        p99: c ? quantileFromBuckets(c.durationBuckets, 0.99) : null,
      };
    }),
    activeConnections: snapshot.activeConnections,
  };
}

/**
 * HAProxy's stats CSV for zdd.py: the old colour's draining backends are MAINT (marathon-lb writes
 * them `disabled`), backends out of rotation DOWN, and scur what is in flight on each backend,
 * summed over the workers. Server names need the agent host of each task, from Marathon's apps.
 */
export function haproxyCsvView(table: RoutingTable | null, plane: DataPlane, ejection: EjectionDecision, apps: readonly MarathonApp[], options: CsvOptions): Iterable<string> {
  const inFlight = plane.traffic().inFlight;
  const agentHosts = new Map(apps.flatMap((a) => a.tasks.map((t): [string, string] => [t.id, t.host])));
  return renderHaproxyCsv(table?.services ?? [], {
    state: (service, backend) => ({
      status: service.draining.includes(backend.address) ? 'MAINT' : getsTraffic(plane, ejection, backend.address) ? 'UP' : 'DOWN',
      scur: inFlight[service.id]?.[backend.address] ?? 0,
      qcur: 0,
    }),
    agentHost: (backend) => agentHosts.get(backend.taskId) ?? backend.host,
  }, options);
}
