// The active checker follows the routing table: a check shared by two services (one host:port
// serving both) runs while either needs it, and is released once, when the last one goes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActiveHealthChecker } from '../../src/health/active.js';
import { decodeApp } from '../../src/marathon/decode.js';
import { AppStore } from '../../src/discovery/app-store.js';
import type { MarathonApp } from '../../src/marathon/decode.js';
import { TableBuilder } from '../../src/routing/builder.js';

const options = { groups: ['x'], strictMode: false, healthCheck: false };
const appWith = (id: string, port: number) => decodeApp({
  id, labels: { HAPROXY_GROUP: 'x' }, portDefinitions: [{ port }],
  healthChecks: [{ protocol: 'TCP', portIndex: 0, intervalSeconds: 3600, timeoutSeconds: 1, maxConsecutiveFailures: 1 }],
  tasks: [{ id: `${id.slice(1)}.t1`, host: '10.9.9.9', ports: [31000], state: 'TASK_RUNNING' }],
}, [])!;

/** The change sets the checker receives when Marathon's apps become each list in turn. */
function changes() {
  const store = new AppStore();
  const builder = new TableBuilder(options);
  let generation = 0;
  return (apps: MarathonApp[]) => {
    store.replaceAll(apps);
    return builder.update(store, store.takeChanges(), (generation += 1)).services;
  };
}

describe('ActiveHealthChecker', () => {
  it('keeps a check two services share until the last one leaves, then releases the backend once', () => {
    const released: string[] = [];
    const checker = new ActiveHealthChecker({ setActive: (address, up) => { if (up) released.push(address); } });
    try {
      const [a, b] = [appWith('/a', 20001), appWith('/b', 20002)];
      const next = changes();
      checker.update(next([a, b]));
      checker.update(next([a]));
      assert.deepEqual(released, [], 'still needed by /a');
      checker.update(next([]));
      assert.deepEqual(released, ['10.9.9.9:31000']);
    } finally {
      checker.stop();
    }
  });

  it('a service rebuilt with the same backend keeps its check (no release)', () => {
    const released: string[] = [];
    const checker = new ActiveHealthChecker({ setActive: (address, up) => { if (up) released.push(address); } });
    try {
      const next = changes();
      checker.update(next([appWith('/a', 20001)]));
      const rebuilt = next([{ ...appWith('/a', 20001), version: 'v2' }]); // a new version, the same backend
      assert.equal(rebuilt.length, 1, 'the service was rebuilt');
      checker.update(rebuilt);
      assert.deepEqual(released, []);
    } finally {
      checker.stop();
    }
  });
});
