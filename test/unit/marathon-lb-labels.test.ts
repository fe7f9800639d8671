// Issue 9's label causes, one test each where the marathon-lb cases do not already pin them down:
// group lists, fail-closed security labels, BACKEND_WEIGHT rule order, agent host resolution.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { routingOptions } from '../../src/app.js';
import { DEFAULTS } from '../../src/config/options.js';
import { HostResolver } from '../../src/discovery/host-resolver.js';
import { decodeApp } from '../../src/marathon/decode.js';
import { compileRoutes, routeVhost } from '../../src/proxy/routes.js';
import { buildRoutingTable } from '../../src/routing/builder.js';
import type { RoutingOptions } from '../../src/routing/table.js';

const OPTIONS: RoutingOptions = { groups: ['external'], strictMode: false, healthCheck: false };

function app(id: string, servicePort: number, labels: Record<string, string>, host = '10.0.0.1') {
  return decodeApp({
    id, labels, portDefinitions: [{ port: servicePort }],
    tasks: [{ id: `${id.slice(1)}.t1`, appId: id, host, ports: [31000 + servicePort % 1000], state: 'TASK_RUNNING' }],
  }, [])!;
}

describe('marathon-lb label semantics (issue 9)', () => {
  it('HAPROXY_GROUP=external,internal puts the app in both groups', () => {
    const apps = [app('/two', 10001, { HAPROXY_GROUP: 'external,internal' })];
    for (const group of ['external', 'internal']) {
      assert.equal(buildRoutingTable(apps, { ...OPTIONS, groups: [group] }).services.length, 1, group);
    }
    assert.equal(buildRoutingTable(apps, { ...OPTIONS, groups: ['other'] }).services.length, 0);
  });

  it('a malformed AUTH or ACL fails closed: the port is not served and a warning says why', () => {
    const apps = [
      app('/bad-auth', 10001, { HAPROXY_GROUP: 'external', HAPROXY_0_AUTH: 'realm:user:$6$salt$short' }),
      app('/no-user', 10002, { HAPROXY_GROUP: 'external', HAPROXY_0_AUTH: 'realm-only' }),
      app('/bad-acl', 10003, { HAPROXY_GROUP: 'external', HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL: '10.0.0.0/33' }),
      app('/good', 10004, { HAPROXY_GROUP: 'external', HAPROXY_0_AUTH: 'r:u:secret', HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL: '10.1.40.0/24 10.1.55.43' }),
    ];
    const table = buildRoutingTable(apps, OPTIONS);
    assert.deepEqual(table.services.map((s) => s.appId), ['/good']);
    assert.deepEqual(table.services[0]!.auth, { realm: 'r', user: 'u', passwordHash: 'secret' });
    assert.deepEqual(table.services[0]!.networkAllowed, ['10.1.40.0/24', '10.1.55.43']);
    for (const [appId, label] of [['/bad-auth', 'HAPROXY_0_AUTH'], ['/no-user', 'HAPROXY_0_AUTH'], ['/bad-acl', 'HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL']]) {
      const warning = table.warnings.find((w) => w.appId === appId && w.label === label);
      assert.ok(warning && /port not served/.test(warning.reason), `${appId}: ${JSON.stringify(table.warnings)}`);
    }
  });

  it('HAProxy template labels are reported once per app and label as not applied', () => {
    const table = buildRoutingTable([app('/tpl', 10001, { HAPROXY_GROUP: 'external', HAPROXY_0_FRONTEND_HEAD: 'x', HAPROXY_0_BACKEND_HEAD: 'y' })], OPTIONS);
    assert.equal(table.services.length, 1, 'the app is still served');
    assert.deepEqual(table.warnings.map((w) => [w.label, w.kind]), [['HAPROXY_0_BACKEND_HEAD', 'not-applied'], ['HAPROXY_0_FRONTEND_HEAD', 'not-applied']]);
  });

  it('shared-vhost rules go by BACKEND_WEIGHT first, then the longest prefix', () => {
    const shared = { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'shop.example.com' };
    const table = buildRoutingTable([
      app('/long', 10001, { ...shared, HAPROXY_0_PATH: '/api/v2' }),
      app('/heavy', 10002, { ...shared, HAPROXY_0_PATH: '/api', HAPROXY_0_BACKEND_WEIGHT: '5' }),
      app('/root', 10003, shared),
    ], OPTIONS);
    const index = compileRoutes(table, '0.0.0.0');
    assert.equal(routeVhost(index, 'shop.example.com', '/api/v2/users')?.appId, '/heavy', 'weight beats the longer prefix');
    assert.equal(routeVhost(index, 'shop.example.com', '/other')?.appId, '/root');
  });

  it('equal rules on a shared vhost go by app id, then service port, as marathon-lb sorts its apps (/web before /web2)', () => {
    const table = buildRoutingTable([
      app('/web2', 10001, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'site.test' }),
      app('/web', 10002, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'site.test' }),
      app('/shop-v2', 10003, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'shop.test' }),
      app('/shop', 10004, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'shop.test' }),
    ], OPTIONS);
    const index = compileRoutes(table, '0.0.0.0');
    assert.equal(routeVhost(index, 'site.test', '/')?.appId, '/web');
    assert.equal(routeVhost(index, 'shop.test', '/cart')?.appId, '/shop');
  });

  it('yes/no labels read as marathon-lb\'s string_to_bool: true, t, yes, y are true, anything else false', () => {
    const port = (labels: Record<string, string>) => buildRoutingTable([app('/b', 10001, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'b.test', ...labels })], OPTIONS);
    for (const yes of ['true', 'T', 'yes', 'Y']) {
      const s = port({ HAPROXY_0_REDIRECT_TO_HTTPS: yes, HAPROXY_0_USE_HSTS: yes, HAPROXY_0_STICKY: yes }).services[0]!;
      assert.deepEqual([s.redirectToHttps, s.hsts, s.sticky], [true, true, true], yes);
    }
    for (const no of ['false', 'no', '0', 'off']) {
      const table = port({ HAPROXY_0_ENABLED: no, HAPROXY_0_REDIRECT_TO_HTTPS: no });
      assert.equal(table.services.length, 0, `ENABLED=${no} takes the port out`);
    }
    assert.equal(port({ HAPROXY_0_ENABLED: 'yes' }).services.length, 1);
    assert.ok(port({ HAPROXY_0_STICKY: 'off' }).warnings.some((w) => w.label === 'HAPROXY_0_STICKY'), 'a word marathon-lb would not write is reported');
  });

  it('a VHOST with an underscore is a virtual host, and its port stays HTTP', () => {
    const table = buildRoutingTable([app('/billing', 10001, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'billing_api.corp.internal' })], OPTIONS);
    assert.deepEqual(table.services.map((s) => [s.mode, s.vhosts]), [['http', ['billing_api.corp.internal']]]);
  });

  it('port 9091 takes the app\'s HTTP port with the lowest service port, and the app id in any case', () => {
    const multi = decodeApp({
      id: '/multi', labels: { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http', HAPROXY_1_MODE: 'http' }, portDefinitions: [{ port: 10020 }, { port: 10010 }],
      tasks: [{ id: 'multi.t1', appId: '/multi', host: '10.0.0.1', ports: [31020, 31010], state: 'TASK_RUNNING' }],
    }, [])!;
    const index = compileRoutes(buildRoutingTable([multi], OPTIONS), '0.0.0.0');
    assert.equal(index.byAppId.get('/multi')?.servicePort, 10010);
  });

  it('health checks as marathon-lb matches them: a COMMAND check (no port, no portIndex) applies to no port; BACKEND_HEALTHCHECK_PORT_INDEX lends its check to a port that has none', () => {
    const twoPorts = (labels: Record<string, string>, healthChecks: unknown[]) => decodeApp({
      id: '/hc', labels: { HAPROXY_GROUP: 'external', ...labels }, portDefinitions: [{ port: 10030 }, { port: 10031 }], healthChecks,
      tasks: [{ id: 'hc.t1', appId: '/hc', host: '10.0.0.1', ports: [31030, 31031], state: 'TASK_RUNNING' }],
    }, [])!;
    const command = buildRoutingTable([twoPorts({}, [{ protocol: 'COMMAND', command: { value: 'true' } }])], { ...OPTIONS, healthCheck: false });
    assert.deepEqual(command.services.map((x) => [x.mode, x.healthCheck]), [['tcp', null], ['tcp', null]]);
    const lent = buildRoutingTable([twoPorts({ HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX: '1' }, [{ protocol: 'HTTP', path: '/health', portIndex: 1 }])], { ...OPTIONS, healthCheck: false });
    const port0 = lent.services.find((x) => x.servicePort === 10030)!;
    assert.equal(port0.mode, 'http');
    assert.equal(port0.healthCheck?.path, '/health');
  });

  it('with --haproxy-map, a plain virtual host is matched after the rules with a path, auth or redirect, whatever its weight', () => {
    const shared = { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'www.test' };
    const apps = [app('/site', 10001, { ...shared, HAPROXY_0_BACKEND_WEIGHT: '5' }), app('/api', 10002, { ...shared, HAPROXY_0_PATH: '/api' })];
    // Through the flags as the CLI reads them, so the test also covers passing --haproxy-map on to the routing.
    const route = (haproxyMap: boolean) => routeVhost(compileRoutes(buildRoutingTable(apps, routingOptions({ ...DEFAULTS, group: ['external'], healthCheck: false, haproxyMap })), '0.0.0.0'), 'www.test', '/api/x')?.appId;
    assert.equal(route(false), '/site', 'without it, weight first');
    assert.equal(route(true), '/api');
  });

  it('a service port that is one of Turbine\'s own is skipped with a warning, and the other apps are served', () => {
    const table = buildRoutingTable([
      app('/greedy', 10001, { HAPROXY_GROUP: 'external', HAPROXY_0_PORT: '9090' }),
      app('/good', 10002, { HAPROXY_GROUP: 'external' }),
    ], routingOptions({ ...DEFAULTS, group: ['external'], healthCheck: false })); // 9090: --admin-port's default
    assert.deepEqual(table.services.map((s) => s.appId), ['/good']);
    assert.deepEqual(table.warnings.filter((w) => w.appId === '/greedy').map((w) => w.reason), ['service port 9090 is Turbine\'s --admin-port: port skipped']);
  });

  it('an IP-per-task port without a service port gets one from the range by marathon-lb\'s hash', () => {
    const ippc = decodeApp({
      id: '/nginx-docker-ippc', labels: { HAPROXY_GROUP: 'external' }, ipAddress: { networkName: 'dcos' },
      container: { type: 'DOCKER', docker: { image: 'nginx', portMappings: [{ containerPort: 80 }] } },
      tasks: [{ id: 'n.t1', appId: '/nginx-docker-ippc', host: '10.0.0.1', ports: [], ipAddresses: [{ ipAddress: '9.0.0.1' }], state: 'TASK_RUNNING' }],
    }, [])!;
    assert.equal(ippc.ipPerTask, true);
    assert.equal(buildRoutingTable([ippc], OPTIONS).services.length, 0, 'no range: no port');
    const table = buildRoutingTable([ippc], { ...OPTIONS, ipPerTaskPorts: { min: 10050, max: 10100 } });
    // 10094: marathon-lb's own assignment for this app (marathon-lb case 37's marathonServicePort).
    assert.deepEqual(table.services.map((s) => [s.servicePort, s.backends.map((b) => b.address)]), [[10094, ['9.0.0.1:80']]]);
  });

  it('agent host names resolve through the cache; a host that does not resolve is skipped with a warning', async () => {
    const answers: Record<string, string> = { agent1: '192.0.2.10' };
    let now = 0;
    let changes = 0;
    const resolver = new HostResolver({
      ttlMs: 1000, now: () => now, onChange: () => { changes += 1; },
      lookup: async (host) => { if (answers[host]) return answers[host]!; throw new Error('ENOTFOUND'); },
    });
    const apps = [app('/a', 10001, { HAPROXY_GROUP: 'external' }, 'agent1'), app('/b', 10002, { HAPROXY_GROUP: 'external' }, 'ghost'),
      app('/c', 10003, { HAPROXY_GROUP: 'external' }, '10.0.0.9')];
    const hosts = () => resolver.addresses(apps.flatMap((a) => a.tasks.map((t) => t.host)));
    const first = buildRoutingTable(apps, OPTIONS, 1, hosts());
    assert.deepEqual(first.services.map((s) => s.backends.map((b) => b.address)), [[], [], ['10.0.0.9:31003']], 'IPs at once, names once resolved');
    await new Promise((r) => setImmediate(r));
    const table = buildRoutingTable(apps, OPTIONS, 2, hosts());
    assert.deepEqual(table.services.map((s) => s.backends.map((b) => b.address)), [['192.0.2.10:31001'], [], ['10.0.0.9:31003']]);
    assert.ok(table.warnings.some((w) => w.appId === '/b' && w.label === 'host ghost'));
    assert.equal(changes, 2);
    answers.agent1 = '192.0.2.11';
    hosts();
    await new Promise((r) => setImmediate(r));
    assert.equal(hosts().get('agent1'), '192.0.2.10', 'within the TTL the cached answer stands');
    now = 1000;
    hosts();
    await new Promise((r) => setImmediate(r));
    assert.equal(hosts().get('agent1'), '192.0.2.11', 're-resolved after the TTL');
  });
});
