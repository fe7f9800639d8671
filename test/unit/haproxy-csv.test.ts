// The stats CSV read the way zdd.py reads it (parse_haproxy_stats, _is_app_listener, select_drained_listeners)
// over the blue/green scenario of zdd_apps.json.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseStatsQuery, renderHaproxyCsv } from '../../src/admin/haproxy-csv.js';
import { decodeAppList } from '../../src/marathon/decode.js';
import { buildRoutingTable } from '../../src/routing/builder.js';
import { readFixture } from '../support/fixtures.js';
import { appListeners, drainedLikeZdd, parseLikeZdd, svnamesLikeZdd } from '../support/zdd.js';

describe('/haproxy?stats;csv for zdd.py', () => {
  it('lists each task of both colours under the group backend; the draining one is MAINT', () => {
    const apps = decodeAppList(readFixture('marathon-lb', 'zdd_apps.json'), []);
    const table = buildRoutingTable(apps, { groups: ['external'], strictMode: false, healthCheck: true });
    const csv = [...renderHaproxyCsv(table.services, {
      state: (service, backend) => ({ status: service.draining.includes(backend.address) ? 'MAINT' : 'UP', scur: backend.port === 16916 ? 2 : 0, qcur: 0 }),
      agentHost: (backend) => backend.host,
    })].join('');
    const listeners = appListeners(parseLikeZdd(csv), 'nginx_10000');
    // waiting_for_listeners: one listener per instance of both colours (3 green + 1 blue).
    assert.deepEqual(listeners.map((l) => l.svname).sort(), ['10_0_1_147_25724', '10_0_6_25_16916', '10_0_6_25_23336', '10_0_6_25_31184']);
    const drained = drainedLikeZdd(listeners);
    assert.deepEqual(drained.map((l) => l.svname), ['10_0_6_25_31184']);
    assert.equal(listeners.filter((l) => l.status === 'UP').length, 3);
  });

  it('names servers as zdd.py computes them from the task, for agents named by IP and by host name', () => {
    const tasks = [{ id: 'web.a', host: 'agent-1.example.com', ports: [31001] }, { id: 'web.b', host: '10.0.0.7', ports: [31002] }];
    const apps = decodeAppList({ apps: [{ id: '/web', labels: { HAPROXY_GROUP: 'external' }, portDefinitions: [{ port: 10000 }], tasks }] }, []);
    const resolved = new Map([['agent-1.example.com', '10.0.0.5'], ['10.0.0.7', '10.0.0.7']]);
    const table = buildRoutingTable(apps, { groups: ['external'], strictMode: false, healthCheck: true }, 1, resolved);
    const csv = [...renderHaproxyCsv(table.services, {
      state: () => ({ status: 'UP', scur: 0, qcur: 0 }),
      agentHost: (backend) => tasks.find((t) => t.id === backend.taskId)!.host,
    })].join('');
    const names = appListeners(parseLikeZdd(csv), 'web_10000').map((l) => l.svname);
    assert.deepEqual(names, tasks.flatMap((t) => svnamesLikeZdd(t, resolved.get(t.host)!)));
    assert.deepEqual(names, ['agent-1_example_com_10_0_0_5_31001', '10_0_0_7_31002']);
  });

  it("reads HAProxy's stats query: ;csv with or without further options, the HTML page without it", () => {
    assert.deepEqual(parseStatsQuery('stats;csv'), { csv: true, upOnly: false, noMaint: false });
    assert.deepEqual(parseStatsQuery('stats;csv;norefresh'), { csv: true, upOnly: false, noMaint: false });
    assert.deepEqual(parseStatsQuery('stats%3Bcsv%3Bup'), { csv: true, upOnly: true, noMaint: false });
    assert.deepEqual(parseStatsQuery('stats;no-maint;csv'), { csv: true, upOnly: false, noMaint: true });
    assert.deepEqual(parseStatsQuery('stats'), { csv: false, upOnly: false, noMaint: false });
    assert.equal(parseStatsQuery('metrics'), null);
    assert.equal(parseStatsQuery('stats%E0%A4%A'), null);
  });
});
