// What changed between two routing tables, for one log line per change and for draining what left.
import type { RoutingTable, Service } from './table.js';

export interface BackendChange {
  service: string;
  address: string;
  taskId: string;
}

export interface TableDiff {
  servicesAdded: string[];
  servicesRemoved: string[];
  servicesChanged: string[];
  backendsAdded: BackendChange[];
  backendsRemoved: BackendChange[];
}

function sameSettings(a: Service, b: Service): boolean {
  return a.servicePort === b.servicePort && a.mode === b.mode && a.balance === b.balance && a.bindAddr === b.bindAddr
    && a.pathsCaseInsensitive === b.pathsCaseInsensitive && a.redirectToHttps === b.redirectToHttps && a.sticky === b.sticky && a.vhosts.join(',') === b.vhosts.join(',')
    && a.paths.join(' ') === b.paths.join(' ') && JSON.stringify(a.healthCheck) === JSON.stringify(b.healthCheck);
}

export function diffTables(before: RoutingTable | null, after: RoutingTable): TableDiff {
  const old = new Map((before?.services ?? []).map((s) => [s.id, s]));
  const diff: TableDiff = { servicesAdded: [], servicesRemoved: [], servicesChanged: [], backendsAdded: [], backendsRemoved: [] };
  for (const service of after.services) {
    const prev = old.get(service.id);
    old.delete(service.id);
    if (prev === service) continue;
    if (!prev) diff.servicesAdded.push(service.id);
    else if (!sameSettings(prev, service)) diff.servicesChanged.push(service.id);
    const prevAddresses = new Set(prev?.backends.map((b) => b.address));
    const nowAddresses = new Set(service.backends.map((b) => b.address));
    for (const b of service.backends) if (!prevAddresses.has(b.address)) diff.backendsAdded.push({ service: service.id, address: b.address, taskId: b.taskId });
    for (const b of prev?.backends ?? []) if (!nowAddresses.has(b.address)) diff.backendsRemoved.push({ service: service.id, address: b.address, taskId: b.taskId });
  }
  for (const service of old.values()) {
    diff.servicesRemoved.push(service.id);
    for (const b of service.backends) diff.backendsRemoved.push({ service: service.id, address: b.address, taskId: b.taskId });
  }
  return diff;
}

export function isEmptyDiff(d: TableDiff): boolean {
  return d.servicesAdded.length + d.servicesRemoved.length + d.servicesChanged.length + d.backendsAdded.length + d.backendsRemoved.length === 0;
}
