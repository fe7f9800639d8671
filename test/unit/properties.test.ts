// Generated input for the label parser, the app decoder and the event decoder: thousands of cases,
// none may throw anything but the documented error, and what comes out stays well-formed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MalformedEvent, decodeApp, decodeEvent, splitEventData, type DecodeProblem } from '../../src/marathon/decode.js';
import { buildRoutingTable } from '../../src/routing/builder.js';

const labelName = fc.oneof(
  fc.constantFrom('GROUP', 'ENABLED', 'PORT', 'MODE', 'VHOST', 'PATH', 'BALANCE', 'BIND_ADDR', 'BACKEND_WEIGHT', 'BACKEND_HEALTHCHECK_PORT_INDEX', 'STICKY')
    .chain((n) => fc.nat(3).map((i) => `HAPROXY_${i}_${n}`)),
  fc.constant('HAPROXY_GROUP'),
  fc.string(),
);
const labelValue = fc.oneof(fc.string(), fc.constantFrom('external', 'true', 'false', 'http', 'tcp', '-i /a /b', '10.0.0.1', '99999', 'a.example.com,b', 'leastconn'));

describe('generated input', () => {
  it('any labels on any ports build a table whose services are well-formed', () => {
    fc.assert(fc.property(fc.dictionary(labelName, labelValue), fc.array(fc.option(fc.integer({ min: -5, max: 70000 })), { maxLength: 4 }), (labels, ports) => {
      const problems: DecodeProblem[] = [];
      const app = decodeApp({ id: '/gen', labels, portDefinitions: ports.map((p) => ({ port: p })), tasks: [{ id: 'gen.1', host: 'h', ports: [31000, 31001, 31002, 31003], state: 'TASK_RUNNING' }] }, problems);
      assert.ok(app);
      const table = buildRoutingTable([app], { groups: ['*'], strictMode: false, healthCheck: true });
      for (const s of table.services) {
        assert.ok(Number.isInteger(s.servicePort) && s.servicePort >= 1 && s.servicePort <= 65535);
        assert.ok(s.mode === 'http' || s.mode === 'tcp');
        assert.ok(['roundrobin', 'leastconn', 'source'].includes(s.balance));
        assert.ok(s.paths.every((p) => p.startsWith('/')));
      }
      for (const w of table.warnings) assert.equal(w.appId, '/gen');
    }), { numRuns: 3000 });
  });

  it('any JSON value as an app decodes or is reported, never thrown', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      const problems: DecodeProblem[] = [];
      const app = decodeApp(value, problems);
      assert.ok(app !== null || problems.length > 0);
      if (app) buildRoutingTable([app], { groups: ['*'], strictMode: false, healthCheck: true });
    }), { numRuns: 3000 });
  });

  it('any JSON document as an event decodes or is refused as malformed', () => {
    const eventLike = fc.record({
      eventType: fc.constantFrom('status_update_event', 'health_status_changed_event', 'instance_health_changed_event', 'api_post_event', 'deployment_info', 'app_terminated_event', 'other'),
      taskId: fc.oneof(fc.string(), fc.integer(), fc.constant(undefined)),
      appId: fc.oneof(fc.string(), fc.constant(undefined), fc.constant(null)),
      taskStatus: fc.oneof(fc.constantFrom('TASK_RUNNING', 'TASK_KILLED', 'TASK_NOPE'), fc.jsonValue()),
      instanceId: fc.oneof(fc.string(), fc.constant(undefined)),
      alive: fc.oneof(fc.boolean(), fc.jsonValue()),
      ports: fc.oneof(fc.array(fc.integer()), fc.jsonValue()),
      plan: fc.jsonValue(),
    }, { requiredKeys: ['eventType'] });
    fc.assert(fc.property(fc.oneof(fc.jsonValue(), eventLike), (value) => {
      try {
        const event = decodeEvent(value, null);
        if (event.type === 'status_update_event') assert.ok(event.taskId.length > 0 && event.appId.startsWith('/'));
      } catch (err) {
        assert.ok(err instanceof MalformedEvent, `unexpected ${(err as Error).name}: ${(err as Error).message}`);
      }
    }), { numRuns: 5000 });
  });

  it('any text as SSE data splits into trimmed, non-empty documents', () => {
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom('a', '{', '}', '\r', '\n', ' ', '"') }), (text) => {
      for (const doc of splitEventData(text)) {
        assert.ok(doc.length > 0 && doc === doc.trim() && !/[\r\n]/.test(doc));
      }
    }), { numRuns: 3000 });
  });
});
