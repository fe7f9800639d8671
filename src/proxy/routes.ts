// The lookups the request path needs: by listener, by virtual host (path prefixes longest first)
// and by Marathon app id. Updated in place with what each table changed, so an event that touched
// one app costs one app; requests read it synchronously, so none sees a half-applied change.
import { wholeTable, type ServiceChange } from '../routing/changes.js';
import type { RoutingTable, Service } from '../routing/table.js';

export interface VhostRoute {
  service: Service;
  prefix: string | null;
  caseInsensitive: boolean;
}

export function listenerKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * With --haproxy-map, plain virtual hosts after every other rule (marathon-lb's map lookup is its
 * last use_backend); then HAPROXY_{n}_BACKEND_WEIGHT (marathon-lb emits higher-weight vhost rules first), then the
 * longest prefix; ties as marathon-lb orders its apps, by app id and then service port (not by
 * "appId:index", where `/web2:0` sorts before `/web:0`), so the order does not depend on the order of changes.
 */
function routeOrder(a: VhostRoute, b: VhostRoute): number {
  const x = a.service;
  const y = b.service;
  return Number(x.mapRouted ?? false) - Number(y.mapRouted ?? false) || y.backendWeight - x.backendWeight || (b.prefix?.length ?? -1) - (a.prefix?.length ?? -1)
    || (x.appId < y.appId ? -1 : x.appId > y.appId ? 1 : 0) || x.servicePort - y.servicePort
    || ((a.prefix ?? '') < (b.prefix ?? '') ? -1 : 1);
}

export class RouteIndex {
  table: RoutingTable | null = null;
  /** Service listeners by `address:port`. */
  readonly byListener = new Map<string, Service>();
  readonly byHost = new Map<string, VhostRoute[]>();
  /** `*.example.com` vhosts, by the suffix `.example.com`. */
  readonly byWildcard = new Map<string, VhostRoute[]>();
  /**
   * Apps that claim a whole host (VHOST without PATH) and redirect it to https, by VHOST label
   * (`a.test`, `*.a.test`): marathon-lb's `redirect scheme https if !{ ssl_fc } host_X` comes
   * before every use_backend, so it also covers the paths other apps claim on that host.
   */
  private readonly redirectingHosts = new HostClaims();
  /** Apps that claim a whole host with AUTH: marathon-lb's `http-request auth realm R if host_X !auth_X` depends on the Host (or SNI) alone. */
  private readonly guardedHosts = new HostClaims();
  /** The app's HTTP service with the lowest service port (marathon-lb's 9091 keeps the first in (appId, servicePort) order). */
  readonly byAppId = new Map<string, Service>();
  private readonly httpByApp = new Map<string, Set<Service>>();

  constructor(private readonly defaultBind: string) {}

  update(table: RoutingTable, changes: readonly ServiceChange[]): void {
    const touched = new Set<VhostRoute[]>();
    const apps = new Set<string>();
    for (const [prev] of changes) if (prev) this.remove(prev, apps);
    for (const [, now] of changes) if (now) this.add(now, apps, touched);
    for (const list of touched) list.sort(routeOrder);
    for (const appId of apps) this.pickAppService(appId);
    this.table = table;
  }

  private remove(service: Service, apps: Set<string>): void {
    const key = listenerKey(service.bindAddr ?? this.defaultBind, service.servicePort);
    if (this.byListener.get(key) === service) this.byListener.delete(key);
    if (service.mode !== 'http') return;
    this.httpByApp.get(service.appId)?.delete(service);
    apps.add(service.appId);
    for (const host of service.vhosts) {
      if (redirectsHost(service)) this.redirectingHosts.remove(host, service);
      if (guardsHost(service)) this.guardedHosts.remove(host, service);
      const [map, hostKey] = this.vhostMap(host);
      const rest = (map.get(hostKey) ?? []).filter((r) => r.service !== service);
      if (rest.length > 0) map.set(hostKey, rest);
      else map.delete(hostKey);
    }
  }

  private add(service: Service, apps: Set<string>, touched: Set<VhostRoute[]>): void {
    this.byListener.set(listenerKey(service.bindAddr ?? this.defaultBind, service.servicePort), service);
    if (service.mode !== 'http') return;
    let set = this.httpByApp.get(service.appId);
    if (!set) {
      set = new Set();
      this.httpByApp.set(service.appId, set);
    }
    set.add(service);
    apps.add(service.appId);
    const routes: VhostRoute[] = service.paths.length === 0
      ? [{ service, prefix: null, caseInsensitive: false }]
      : service.paths.map((p) => ({ service, prefix: service.pathsCaseInsensitive ? p.toLowerCase() : p, caseInsensitive: service.pathsCaseInsensitive }));
    for (const host of service.vhosts) {
      if (redirectsHost(service)) this.redirectingHosts.add(host, service);
      if (guardsHost(service)) this.guardedHosts.add(host, service);
      const [map, hostKey] = this.vhostMap(host);
      let list = map.get(hostKey);
      if (!list) {
        list = [];
        map.set(hostKey, list);
      }
      list.push(...routes);
      touched.add(list);
    }
  }

  /** Whether the Host is redirected to https as a whole (see redirectingHosts). */
  redirectsToHttps(hostHeader: string): boolean {
    return this.redirectingHosts.of(hostHeader) !== null;
  }

  /** The apps whose AUTH guards the Host as a whole (see guardedHosts), or null. */
  guardsOf(hostHeader: string): readonly Service[] | null {
    return this.guardedHosts.of(hostHeader);
  }

  private vhostMap(host: string): [Map<string, VhostRoute[]>, string] {
    return host.startsWith('*.') ? [this.byWildcard, host.slice(1)] : [this.byHost, host];
  }

  private pickAppService(appId: string): void {
    let best: Service | null = null;
    for (const s of this.httpByApp.get(appId) ?? []) if (!best || s.servicePort < best.servicePort) best = s;
    if (best) this.byAppId.set(appId, best);
    else {
      this.byAppId.delete(appId);
      this.httpByApp.delete(appId);
    }
  }
}

/** Apps that claim whole hosts for a host-wide rule, by VHOST label; a request looks nothing up while there are none. */
class HostClaims {
  private readonly byLabel = new Map<string, Service[]>();

  add(label: string, service: Service): void {
    this.byLabel.set(label, [...this.byLabel.get(label) ?? [], service]);
  }

  remove(label: string, service: Service): void {
    const rest = (this.byLabel.get(label) ?? []).filter((s) => s !== service);
    if (rest.length > 0) this.byLabel.set(label, rest);
    else this.byLabel.delete(label);
  }

  /** The apps claiming a Host value's host, by its name or by a wildcard over it; null when none. */
  of(hostHeader: string): readonly Service[] | null {
    if (this.byLabel.size === 0) return null;
    const host = hostOf(hostHeader);
    const dot = host.indexOf('.');
    const exact = this.byLabel.get(host);
    const wild = dot >= 0 ? this.byLabel.get(`*${host.slice(dot)}`) : undefined;
    return exact && wild ? [...exact, ...wild] : exact ?? wild ?? null;
  }
}

/** A fresh index of a whole table (every service added). */
export function compileRoutes(table: RoutingTable, defaultBind: string): RouteIndex {
  const index = new RouteIndex(defaultBind);
  index.update(table, wholeTable(table).services);
  return index;
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
/** A Host value's host name as virtual hosts are keyed: lower case, without its port or a trailing dot. */
export function hostOf(hostHeader: string): string {
  let host = hostHeader.toLowerCase();
  const colon = host.lastIndexOf(':');
  if (colon > 0 && !host.endsWith(']')) host = host.slice(0, colon);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

export function routeVhost(index: RouteIndex, hostHeader: string | undefined, path: string): Service | null {
  if (!hostHeader) return null;
  const host = hostOf(hostHeader);
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

/** An app that claims whole hosts (VHOST without PATH) and redirects them to https. */
function redirectsHost(service: Service): boolean {
  return service.redirectToHttps && service.paths.length === 0;
}

/** An app that claims whole hosts (VHOST without PATH) behind AUTH. */
function guardsHost(service: Service): boolean {
  return service.auth !== null && service.paths.length === 0;
}
