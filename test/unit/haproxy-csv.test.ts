// The stats CSV read the way zdd.py reads it (parse_haproxy_stats, _is_app_listener, select_drained_listeners)
// over the blue/green scenario of zdd_apps.json.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderHaproxyCsv } from '../../src/admin/haproxy-csv.js';
import { decodeAppList } from '../../src/marathon/decode.js';
import { buildRoutingTable } from '../../src/routing/builder.js';
import { readFixture } from '../support/fixtures.js';

/** zdd.py's parse_haproxy_stats: header without '# ' and the trailing ',', each row without its last field. */
function parseLikeZdd(csv: string): Record<string, string>[] {
  const rows = csv.split('\n').filter((r) => r !== '');
  const headings = rows.shift()!.replace(/^[# ]+/, '').replace(/[,\n]+$/, '').split(',');
  return rows.filter((r) => !r.startsWith('#')).map((r) => {
    const fields = r.split(',').slice(0, -1);
    assert.equal(fields.length, headings.length, r);
    return Object.fromEntries(headings.map((h, i) => [h, fields[i]!]));
  });
}

describe('/haproxy?stats;csv for zdd.py', () => {
  it('lists each task of both colours under the group backend; the draining one is MAINT', () => {
    const apps = decodeAppList(readFixture('marathon-lb', 'zdd_apps.json'), []);
    const table = buildRoutingTable(apps, { groups: ['external'], strictMode: false, healthCheck: true });
    const csv = renderHaproxyCsv(table.services, (service, backend) => ({
      status: service.draining.includes(backend.address) ? 'MAINT' : 'UP', scur: backend.port === 16916 ? 2 : 0, qcur: 0,
    }));
    const listeners = parseLikeZdd(csv).filter((l) => l.pxname === 'nginx_10000' && !['BACKEND', 'FRONTEND'].includes(l.svname!));
    // waiting_for_listeners: one listener per instance of both colours (3 green + 1 blue).
    assert.deepEqual(listeners.map((l) => l.svname).sort(), ['10_0_1_147_25724', '10_0_6_25_16916', '10_0_6_25_23336', '10_0_6_25_31184']);
    const drained = listeners.filter((l) => l.status === 'MAINT' && Number(l.qcur || 0) === 0 && Number(l.scur || 0) === 0);
    assert.deepEqual(drained.map((l) => l.svname), ['10_0_6_25_31184']);
    assert.equal(listeners.filter((l) => l.status === 'UP').length, 3);
  });
});
