// Compiles a RoutingTable into the lookups the request path needs: a Map by listener, by virtual
// host (with path prefixes longest first) and by Marathon app id. Built once per table.
import type { RoutingTable, Service } from '../routing/table.js';

export interface VhostRoute {
  service: Service;
  prefix: string | null;
  caseInsensitive: boolean;
}

export interface RouteIndex {
  table: RoutingTable;
  /** Service listeners by `address:port`. */
  byListener: Map<string, Service>;
  byHost: Map<string, VhostRoute[]>;
  /** `*.example.com` vhosts, by the suffix `.example.com`. */
  byWildcard: Map<string, VhostRoute[]>;
  byAppId: Map<string, Service>;
}

export function listenerKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export function compileRoutes(table: RoutingTable, defaultBind: string): RouteIndex {
  const byListener = new Map<string, Service>();
  const byHost = new Map<string, VhostRoute[]>();
  const byWildcard = new Map<string, VhostRoute[]>();
  const byAppId = new Map<string, Service>();
  for (const service of table.services) {
    byListener.set(listenerKey(service.bindAddr ?? defaultBind, service.servicePort), service);
    if (service.mode !== 'http') continue;
    const current = byAppId.get(service.appId);
    if (!current || service.portIndex < current.portIndex) byAppId.set(service.appId, service);
    const routes: VhostRoute[] = service.paths.length === 0
      ? [{ service, prefix: null, caseInsensitive: false }]
      : service.paths.map((p) => ({ service, prefix: service.pathsCaseInsensitive ? p.toLowerCase() : p, caseInsensitive: service.pathsCaseInsensitive }));
    for (const host of service.vhosts) {
      const map = host.startsWith('*.') ? byWildcard : byHost;
      const key = host.startsWith('*.') ? host.slice(1) : host;
      const list = map.get(key) ?? [];
      list.push(...routes);
      map.set(key, list);
    }
  }
  const order = (a: VhostRoute, b: VhostRoute) => (b.prefix?.length ?? -1) - (a.prefix?.length ?? -1);
  for (const list of byHost.values()) list.sort(order);
  for (const list of byWildcard.values()) list.sort(order);
  return { table, byListener, byHost, byWildcard, byAppId };
}

function matchPath(routes: readonly VhostRoute[], path: string): Service | null {
  let lower: string | null = null;
  for (const route of routes) {
    if (route.prefix === null) return route.service;
    if (route.caseInsensitive) {
      lower ??= path.toLowerCase();
      if (lower.startsWith(route.prefix)) return route.service;
    } else if (path.startsWith(route.prefix)) return route.service;
  }
  return null;
}

/** The service for a Host header and request path, or null (unknown host, or no path matches). */
export function routeVhost(index: RouteIndex, hostHeader: string | undefined, path: string): Service | null {
  if (!hostHeader) return null;
  let host = hostHeader.toLowerCase();
  const colon = host.lastIndexOf(':');
  if (colon > 0 && !host.endsWith(']')) host = host.slice(0, colon);
  if (host.endsWith('.')) host = host.slice(0, -1);
  const exact = index.byHost.get(host);
  if (exact) {
    const service = matchPath(exact, path);
    if (service) return service;
  }
  const dot = host.indexOf('.');
  if (dot >= 0) {
    const wild = index.byWildcard.get(host.slice(dot));
    if (wild) return matchPath(wild, path);
  }
  return null;
}
