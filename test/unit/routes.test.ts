// The route index updated in place with each table's changes answers exactly as one compiled from
// scratch, over thousands of generated sequences of tables.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { RoutingTable, Service } from '../../src/routing/table.js';
import type { ServiceChange } from '../../src/routing/changes.js';
import { RouteIndex, compileRoutes, routeVhost } from '../../src/proxy/routes.js';

const HOSTS = ['a.example.com', 'b.example.com', '*.example.com', 'c.test'];
const PATHS = ['/api', '/api/v2', '/static', '/'];
const PROBES = ['a.example.com', 'b.example.com', 'x.example.com', 'c.test', 'nope.test'].flatMap((host) =>
  ['/', '/api', '/api/v2/users', '/API/x', '/static/app.js', '/other'].map((path) => [host, path] as const));

const spec = fc.record({
  app: fc.constantFrom('/a', '/b', '/c', '/d'),
  portIndex: fc.nat(2),
  servicePort: fc.integer({ min: 10000, max: 10005 }),
  mode: fc.constantFrom('http', 'tcp') as fc.Arbitrary<'http' | 'tcp'>,
  vhosts: fc.subarray(HOSTS),
  paths: fc.subarray(PATHS),
  ci: fc.boolean(),
});

type Spec = typeof spec extends fc.Arbitrary<infer T> ? T : never;

function toService(s: Spec): Service {
  return {
    id: `${s.app}:${s.portIndex}`, appId: s.app, portIndex: s.portIndex, servicePort: s.servicePort, mode: s.mode,
    vhosts: s.vhosts, paths: s.paths, pathsCaseInsensitive: s.ci, balance: 'roundrobin', bindAddr: null, backendWeight: 0,
    redirectToHttps: false, sticky: false, healthCheck: null, auth: null, hsts: false, proxyPassPath: null, revProxyPath: null,
    rootRedirect: null, networkAllowed: null, sslCert: null, bindOptions: null, backends: [], draining: [], excluded: [],
  };
}

/** One table from specs: one service per id and per listener (the builder resolves conflicts the same way). */
function table(specs: Spec[], generation: number, cache: Map<string, Service>): RoutingTable {
  const byId = new Map<string, Service>();
  const ports = new Set<number>();
  for (const s of specs) {
    const id = `${s.app}:${s.portIndex}`;
    if (byId.has(id) || ports.has(s.servicePort)) continue;
    ports.add(s.servicePort);
    // Unchanged services keep their object, as the builder's memo does.
    const key = JSON.stringify(s);
    const service = cache.get(key) ?? toService(s);
    cache.set(key, service);
    byId.set(id, service);
  }
  return { generation, appCount: 4, services: [...byId.values()], warnings: [] };
}

function answers(index: RouteIndex) {
  return {
    listeners: [...index.byListener].map(([k, s]) => `${k}=${s.id}`).sort(),
    apps: [...index.byAppId].map(([k, s]) => `${k}=${s.id}`).sort(),
    vhosts: PROBES.map(([host, path]) => routeVhost(index, host, path)?.id ?? null),
  };
}

describe('RouteIndex', () => {
  it('updated with each change, it answers as a fresh compile of the same table', () => {
    fc.assert(fc.property(fc.array(fc.array(spec, { maxLength: 8 }), { minLength: 1, maxLength: 6 }), (tables) => {
      const cache = new Map<string, Service>();
      const index = new RouteIndex('0.0.0.0');
      let previous = new Map<string, Service>();
      tables.forEach((specs, generation) => {
        const t = table(specs, generation + 1, cache);
        const next = new Map(t.services.map((s) => [s.id, s]));
        const changes: ServiceChange[] = [];
        for (const s of t.services) if (previous.get(s.id) !== s) changes.push([previous.get(s.id), s]);
        for (const [id, s] of previous) if (!next.has(id)) changes.push([s, undefined]);
        index.update(t, changes);
        previous = next;
        assert.deepEqual(answers(index), answers(compileRoutes(t, '0.0.0.0')));
      });
    }), { numRuns: 2000 });
  });
});
