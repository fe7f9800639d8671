// What marathon-lb's /_haproxy_getvhostmap and /_haproxy_getappmap return: its domain2backend.map
// and app2backend.map, which exist with --haproxy-map (empty without), one `key backend` per line,
// backends named as in the stats CSV, so tools can join the maps with it.
import type { RoutingTable } from '../routing/table.js';
import { backendName } from './haproxy-csv.js';

/**
 * Each virtual host that --haproxy-map routes by map (no PATH, AUTH or redirect), with its backend;
 * none without the virtual-host listeners (--dont-bind-http-https). marathon-lb leaves an app
 * without tasks out of its config, maps included.
 */
export function vhostMap(table: RoutingTable | null, vhostListeners: boolean): [string, string][] {
  const out: [string, string][] = [];
  const seen = new Set<string>();
  if (!vhostListeners) return out;
  for (const s of table?.services ?? []) {
    if (!s.mapRouted || s.backends.length === 0) continue;
    for (const host of s.vhosts) {
      const line = `${host} ${backendName(s)}`;
      if (!seen.has(line)) out.push([host, backendName(s)]);
      seen.add(line);
    }
  }
  return out;
}

/** With --haproxy-map, each app reachable by X-Marathon-App-Id and its backend: its HTTP port with the lowest service port (port 9091's choice). */
export function appIdMap(table: RoutingTable | null, haproxyMap: boolean): [string, string][] {
  if (!haproxyMap) return [];
  const first = new Map<string, RoutingTable['services'][number]>();
  for (const s of table?.services ?? []) {
    const held = first.get(s.appId);
    if (s.mode === 'http' && s.backends.length > 0 && (held === undefined || s.servicePort < held.servicePort)) first.set(s.appId, s);
  }
  return [...first.values()].map((s): [string, string] => [s.appId, backendName(s)]);
}

/** A map as marathon-lb writes it: `key backend` lines. */
export function mapText(entries: readonly [string, string][]): string {
  return entries.map(([key, backend]) => `${key} ${backend}\n`).join('');
}
