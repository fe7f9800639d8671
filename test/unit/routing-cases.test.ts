// Every case in test/fixtures/cases (copied from the shared fixtures): the services served (with the fields each expectation
// names), the service ports not served, and the warnings reported.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeApp, type DecodeProblem } from '../../src/marathon/decode.js';
import { buildRoutingTable } from '../../src/routing/builder.js';
import { fixtureFiles, readFixture } from '../support/fixtures.js';

interface Case {
  name: string;
  why: string;
  options: { groups: string[]; strictMode: boolean; healthCheck: boolean };
  apps: unknown[];
  expect: {
    services: (Record<string, unknown> & { appId: string; portIndex: number; backends: string[] })[];
    notServed: number[];
    warnings?: { appId: string; label: string }[];
  };
}

describe('routing cases from the shared fixtures', () => {
  const files = fixtureFiles('cases');
  it('finds the cases', () => assert.ok(files.length >= 18, `only ${files.length} cases found`));
  for (const file of files) {
    const c = readFixture<Case>('cases', file);
    it(`${c.name}: ${c.why}`, () => {
      const problems: DecodeProblem[] = [];
      const apps = c.apps.map((a) => decodeApp(a, problems)!);
      assert.deepEqual(problems, []);
      const table = buildRoutingTable(apps, { groups: c.options.groups, strictMode: c.options.strictMode, healthCheck: c.options.healthCheck });
      assert.equal(table.services.length, c.expect.services.length, `services: ${table.services.map((s) => s.id).join(', ')}`);
      for (const expected of c.expect.services) {
        const service = table.services.find((s) => s.appId === expected.appId && s.portIndex === expected.portIndex);
        assert.ok(service, `no service for ${expected.appId} port ${expected.portIndex}`);
        for (const [field, value] of Object.entries(expected)) {
          if (field === 'backends') assert.deepEqual(service.backends.map((b) => b.address), value, `${expected.appId} backends`);
          else assert.deepEqual((service as unknown as Record<string, unknown>)[field], value, `${expected.appId} ${field}`);
        }
      }
      const served = new Set(table.services.map((s) => s.servicePort));
      for (const port of c.expect.notServed) assert.ok(!served.has(port), `service port ${port} must not be served`);
      for (const w of c.expect.warnings ?? []) {
        assert.ok(table.warnings.some((x) => x.appId === w.appId && x.label === w.label), `warning for ${w.appId} ${w.label}; got ${JSON.stringify(table.warnings)}`);
      }
      if (!c.expect.warnings) assert.deepEqual(table.warnings, []);
    });
  }
});
