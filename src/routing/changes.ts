// The one change set of a routing table: computed once by the builder, applied as it is by the
// proxy, the workers and the active checker (as Envoy hands one host-set update to every
// consumer), and summarised for the log.
import type { HttpFeatureLabels } from './labels.js';
import type { RoutingTable, Service } from './table.js';

/** [previous, current] for a service added (previous undefined), replaced, or removed (current undefined). */
export type ServiceChange = readonly [Service | undefined, Service | undefined];

export interface TableChange {
  readonly table: RoutingTable;
  /** Each service whose value changed, once. An unchanged service keeps its object from table to table. */
  readonly services: readonly ServiceChange[];
  /** A service id came or went: the table's order, and perhaps its listeners, changed. */
  readonly idsChanged: boolean;
  readonly warningsChanged: boolean;
}

/** The change that brings an empty data plane to `table`. */
export function wholeTable(table: RoutingTable): TableChange {
  return { table, services: table.services.map((s): ServiceChange => [undefined, s]), idsChanged: true, warningsChanged: table.warnings.length > 0 };
}

/**
 * A table's services in their order, kept from table to table: an event that replaces services
 * without adding or removing one swaps them into their slots instead of ordering them again.
 */
export class ServiceOrder {
  private services: readonly Service[] = [];
  private position = new Map<string, number>();

  /** The services in this order: the set of ids changed. */
  reorder(services: Service[]): Service[] {
    this.services = services;
    this.position = new Map(services.map((s, i) => [s.id, i]));
    return services;
  }

  /** The last order with these services in place of theirs (same ids). */
  replace(replaced: Iterable<Service>): Service[] {
    const services = this.services.slice();
    for (const s of replaced) services[this.position.get(s.id)!] = s;
    this.services = services;
    return services;
  }
}

export interface BackendMove {
  service: string;
  appId: string;
  address: string;
  taskId: string;
}

/** What a change did, for one log line: which services came, went or changed settings, and which backends moved. */
export interface ChangeSummary {
  servicesAdded: string[];
  servicesRemoved: string[];
  servicesChanged: string[];
  backendsAdded: BackendMove[];
  backendsRemoved: BackendMove[];
}

/** Label-driven behaviour of the data plane: an edit to one alone is a changed service in the log. */
const FEATURE_FIELDS = ['auth', 'hsts', 'proxyPassPath', 'revProxyPath', 'rootRedirect', 'networkAllowed', 'sslCert', 'bindOptions'] as const satisfies readonly (keyof HttpFeatureLabels)[];

function sameSettings(a: Service, b: Service): boolean {
  return FEATURE_FIELDS.every((k) => JSON.stringify(a[k]) === JSON.stringify(b[k])) && a.servicePort === b.servicePort && a.mode === b.mode && a.balance === b.balance && a.bindAddr === b.bindAddr
    && a.pathsCaseInsensitive === b.pathsCaseInsensitive && a.redirectToHttps === b.redirectToHttps && a.sticky === b.sticky && a.vhosts.join(',') === b.vhosts.join(',')
    && a.paths.join(' ') === b.paths.join(' ') && JSON.stringify(a.healthCheck) === JSON.stringify(b.healthCheck);
}

export function summariseChange(changes: readonly ServiceChange[]): ChangeSummary {
  const summary: ChangeSummary = { servicesAdded: [], servicesRemoved: [], servicesChanged: [], backendsAdded: [], backendsRemoved: [] };
  for (const [before, after] of changes) {
    if (!before) summary.servicesAdded.push(after!.id);
    else if (!after) summary.servicesRemoved.push(before.id);
    else if (!sameSettings(before, after)) summary.servicesChanged.push(after.id);
    const id = (after ?? before)!.id;
    const was = new Set(before?.backends.map((b) => b.address));
    const is = new Set(after?.backends.map((b) => b.address));
    for (const b of after?.backends ?? []) if (!was.has(b.address)) summary.backendsAdded.push({ service: id, appId: b.appId, address: b.address, taskId: b.taskId });
    for (const b of before?.backends ?? []) if (!is.has(b.address)) summary.backendsRemoved.push({ service: id, appId: b.appId, address: b.address, taskId: b.taskId });
  }
  return summary;
}

export function isEmptySummary(s: ChangeSummary): boolean {
  return s.servicesAdded.length + s.servicesRemoved.length + s.servicesChanged.length + s.backendsAdded.length + s.backendsRemoved.length === 0;
}
