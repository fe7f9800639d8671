// The 41 cases of test/fixtures/marathon-lb/cases, whose outcome marathon-lb's own Python produced:
// each through decode + the table builder, every field the case names that Turbine models compared.
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, it } from 'node:test';
import { AppStore } from '../../src/discovery/app-store.js';
import { decodeApp, type DecodeProblem, type MarathonApp } from '../../src/marathon/decode.js';
import { appIdMap, vhostMap } from '../../src/admin/haproxy-maps.js';
import { buildRoutingTable } from '../../src/routing/builder.js';
import type { Service } from '../../src/routing/table.js';
import { fixtureFiles, readFixture } from '../support/fixtures.js';

interface ExpectedService {
  appId: string;
  portIndex: number;
  servicePort: number;
  bindAddr: string;
  mode: 'http' | 'tcp';
  balance: string;
  vhosts: string[];
  paths: string[];
  groups: string[];
  backends: string[];
  drainingBackends: string[];
  backendWeight?: number;
  appIdHeaderRoute?: boolean;
  activeHealthCheck: null | { kind: 'http' | 'tcp'; intervalSeconds: number; fall: number; httpGetPath?: string; timeoutSeconds?: number; checkPortPerBackend?: number[] };
  basicAuth?: { realm: string; user: string; passwordHash: string };
  hsts?: boolean;
  redirectToHttps?: boolean;
  proxyPassPath?: string;
  revProxyPath?: string;
  rootRedirectTo?: string;
  sticky?: boolean;
  networkAllowed?: string[];
  sslCert?: string;
  bindOptions?: string;
}

interface Case {
  name: string;
  why: string;
  options: { groups: string[]; strictMode: boolean; healthCheck: boolean; hostResolution?: Record<string, string>; haproxyMap?: boolean };
  previousRounds?: unknown[][];
  apps: unknown[];
  expect: {
    services: ExpectedService[]; notServed: { appId: string; portIndex: number; servicePort: number; reason: string }[]; sharedHttpVhostRuleOrder: string[];
    vhostMap?: Record<string, string>; appIdMap?: Record<string, string>;
  };
}

/*
 * Fields of `expect` Turbine deliberately does not compare, with the reason.
 * - pathExpr, backendName: HAProxy config text and names; Turbine has no config file (backendName
 *   is checked by the zdd CSV test, where zdd.py reads it).
 * - groups: marathon-lb's effective group list; Turbine decides served/not served from it, which
 *   the served set and notServed check.
 * - backends order: marathon-lb orders servers by agent host then port. Turbine compares the set:
 *   order changes only which server HAProxy's roundrobin starts at and how `balance source` hashes
 *   map clients, and Turbine's balancers do neither the HAProxy way, so matching the order would
 *   not make any request go where marathon-lb would send it.
 * - backendWeight with --haproxy-map: marathon-lb gives the service that emits the map lookup rule
 *   weight -1 so that rule comes last in the config. Turbine looks a plain vhost up by host (a map in
 *   effect) after any path rule of that host, whatever the weight, so the -1 has no counterpart.
 * - Several apps on one service port (cases 26 and 31, built from unit tests that never set
 *   distinct ports; Marathon itself hands out distinct ones): marathon-lb writes one frontend per
 *   app, all binding the port, and the kernel splits connections among them at random. Turbine
 *   gives a listener one owner: the first app by id; the others are reported ("already served") and
 *   not served, which the test asserts instead.
 */

function hostAddresses(c: Case, apps: readonly MarathonApp[]): Map<string, string | null> {
  const hosts = new Map<string, string | null>(Object.entries(c.options.hostResolution ?? {}));
  for (const app of apps) for (const task of app.tasks) if (!hosts.has(task.host)) hosts.set(task.host, isIP(task.host) ? task.host : null);
  return hosts;
}

function compare(service: Service, expected: ExpectedService, haproxyMap: boolean): void {
  const at = `${expected.appId}:${expected.portIndex}`;
  assert.equal(service.servicePort, expected.servicePort, `${at} servicePort`);
  assert.equal(service.bindAddr ?? '*', expected.bindAddr, `${at} bindAddr`);
  assert.equal(service.mode, expected.mode, `${at} mode`);
  assert.equal(service.balance, expected.balance, `${at} balance`);
  assert.deepEqual(service.vhosts, expected.vhosts, `${at} vhosts`);
  assert.deepEqual(service.paths, expected.paths, `${at} paths`);
  assert.deepEqual(service.backends.map((b) => b.address).sort(), [...expected.backends].sort(), `${at} backends`);
  assert.deepEqual([...service.draining].sort(), [...expected.drainingBackends].sort(), `${at} drainingBackends`);
  if (expected.backendWeight !== undefined && !haproxyMap) assert.equal(service.backendWeight, expected.backendWeight, `${at} backendWeight`);
  assert.equal(service.redirectToHttps, expected.redirectToHttps ?? false, `${at} redirectToHttps`);
  assert.equal(service.hsts, expected.hsts ?? false, `${at} hsts`);
  assert.equal(service.sticky, expected.sticky ?? false, `${at} sticky`);
  assert.deepEqual(service.auth, expected.basicAuth ?? null, `${at} auth`);
  assert.equal(service.proxyPassPath, expected.proxyPassPath ?? null, `${at} proxyPassPath`);
  assert.equal(service.revProxyPath, expected.revProxyPath ?? null, `${at} revProxyPath`);
  assert.equal(service.rootRedirect, expected.rootRedirectTo ?? null, `${at} rootRedirect`);
  assert.deepEqual(service.networkAllowed, expected.networkAllowed ?? null, `${at} networkAllowed`);
  assert.equal(service.sslCert, expected.sslCert ?? null, `${at} sslCert`);
  assert.equal(service.bindOptions, expected.bindOptions ?? null, `${at} bindOptions`);
  const check = expected.activeHealthCheck;
  if (check === null) {
    assert.equal(service.healthCheck, null, `${at} activeHealthCheck`);
    return;
  }
  assert.ok(service.healthCheck, `${at} activeHealthCheck`);
  assert.equal(service.healthCheck.protocol === 'tcp' ? 'tcp' : 'http', check.kind, `${at} check kind`);
  assert.equal(service.healthCheck.intervalMs, check.intervalSeconds * 1000, `${at} check interval`);
  assert.equal(service.healthCheck.fall, check.fall, `${at} check fall`);
  if (check.httpGetPath !== undefined) assert.equal(service.healthCheck.path, check.httpGetPath, `${at} check path`);
  if (check.timeoutSeconds !== undefined) assert.equal(service.healthCheck.timeoutMs, check.timeoutSeconds * 1000, `${at} check timeout`);
  if (check.checkPortPerBackend !== undefined) {
    const byAddress = new Map(service.backends.map((b) => [b.address, b.checkPort]));
    assert.deepEqual(expected.backends.map((a) => byAddress.get(a)), check.checkPortPerBackend, `${at} check ports`);
  }
}

describe('marathon-lb cases (outcomes produced by marathon-lb itself)', () => {
  const files = fixtureFiles('marathon-lb/cases');
  it('finds the 41 cases', () => assert.equal(files.length, 41));
  for (const file of files) {
    const c = readFixture<Case>('marathon-lb/cases', file);
    it(`${file}: ${c.name}`, () => {
      // Each /v2/apps answer in turn, as the sync applies them (the store remembers task health).
      const problems: DecodeProblem[] = [];
      const store = new AppStore();
      for (const round of [...(c.previousRounds ?? []), c.apps]) store.replaceAll(round.map((a) => decodeApp(a, problems)!));
      const apps: readonly MarathonApp[] = store.snapshot();
      const table = buildRoutingTable(apps, c.options, 1, hostAddresses(c, apps));
      const owners = new Map<number, string>();
      const expectedServed = c.expect.services.filter((e) => {
        const owner = owners.get(e.servicePort);
        if (owner === undefined) owners.set(e.servicePort, e.appId);
        else assert.ok(table.warnings.some((w) => w.appId === e.appId && w.reason.includes(`already served by ${owner}`)), `${e.appId} reported as sharing ${e.servicePort}`);
        return owner === undefined;
      });
      for (const expected of expectedServed) {
        const service = table.services.find((s) => s.appId === expected.appId && s.portIndex === expected.portIndex);
        assert.ok(service, `no service for ${expected.appId} port ${expected.portIndex}; served: ${table.services.map((s) => s.id).join(', ')}; warnings ${JSON.stringify(table.warnings)}`);
        compare(service, expected, c.options.haproxyMap === true);
      }
      assert.equal(table.services.length, expectedServed.length, `served: ${table.services.map((s) => s.id).join(', ')}`);
      for (const n of c.expect.notServed) {
        assert.ok(!table.services.some((s) => s.appId === n.appId && s.portIndex === n.portIndex), `${n.appId}:${n.portIndex} must not be served (${n.reason})`);
      }
      // The maps /_haproxy_getvhostmap and /_haproxy_getappmap return, for the services Turbine serves (see above for a shared port).
      const served = new Set(expectedServed.map((e) => `${e.appId.slice(1).replaceAll('/', '_')}_${e.servicePort}`));
      const servedOnly = (map: Record<string, string>) => Object.fromEntries(Object.entries(map).filter(([, backend]) => served.has(backend)));
      assert.deepEqual(vhostMap(table, true), Object.entries(servedOnly(c.expect.vhostMap ?? {})), 'vhost map, in order');
      assert.deepEqual(appIdMap(table, c.options.haproxyMap === true), Object.entries(servedOnly(c.expect.appIdMap ?? {})), 'app id map, in order');
    });
  }
});
