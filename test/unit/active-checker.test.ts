// The active checker follows the routing table: a check shared by two services (one host:port
// serving both) runs while either needs it, and is released once, when the last one goes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActiveHealthChecker } from '../../src/health/active.js';
import { decodeApp } from '../../src/marathon/decode.js';
import { buildRoutingTable } from '../../src/routing/table.js';

const options = { groups: ['x'], strictMode: false, healthCheck: false };
const appWith = (id: string, port: number) => decodeApp({
  id, labels: { HAPROXY_GROUP: 'x' }, portDefinitions: [{ port }],
  healthChecks: [{ protocol: 'TCP', portIndex: 0, intervalSeconds: 3600, timeoutSeconds: 1, maxConsecutiveFailures: 1 }],
  tasks: [{ id: `${id.slice(1)}.t1`, host: '10.9.9.9', ports: [31000], state: 'TASK_RUNNING' }],
}, [])!;

describe('ActiveHealthChecker', () => {
  it('keeps a check two services share until the last one leaves, then releases the backend once', () => {
    const released: string[] = [];
    const checker = new ActiveHealthChecker({ setActive: (address, up) => { if (up) released.push(address); } });
    try {
      const [a, b] = [appWith('/a', 20001), appWith('/b', 20002)];
      checker.update(buildRoutingTable([a, b], options));
      checker.update(buildRoutingTable([a], options));
      assert.deepEqual(released, [], 'still needed by /a');
      checker.update(buildRoutingTable([], options));
      assert.deepEqual(released, ['10.9.9.9:31000']);
    } finally {
      checker.stop();
    }
  });

  it('a service rebuilt with the same backend keeps its check (no release)', () => {
    const released: string[] = [];
    const checker = new ActiveHealthChecker({ setActive: (address, up) => { if (up) released.push(address); } });
    try {
      checker.update(buildRoutingTable([appWith('/a', 20001)], options));
      checker.update(buildRoutingTable([appWith('/a', 20001)], options)); // a new object for the same app
      assert.deepEqual(released, []);
    } finally {
      checker.stop();
    }
  });
});
