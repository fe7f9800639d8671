// Each upstream connection reads into a buffer of its own, kept for its life, idle in the pool
// included: 16 KiB until a read fills it, then the full 64 KiB a bulk transfer wants. With many
// backends kept warm, those buffers are most of Turbine's memory. Turbine runs in this process, so
// the test reads its ArrayBuffer memory directly.
import assert from 'node:assert/strict';
import { Agent, createServer, get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, until } from '../support/net.js';

const CONNECTIONS = 100;
const SMALL = 'a small answer';
const BIG = Array.from({ length: 1_000_000 }, (_, i) => String.fromCharCode(97 + ((i * 7 + (i >> 9)) % 26))).join('');

/**
 * `CONNECTIONS` requests at once, each on a keep-alive client connection of its own (closed after):
 * as many upstream connections, and answers that go out as they came, waiting for the end of the turn.
 */
async function burst(port: number, path: string): Promise<string[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  try {
    return await Promise.all(Array.from({ length: CONNECTIONS }, () => new Promise<string>((resolve, reject) => {
      httpGet({ host: '127.0.0.1', port, path, agent }, (res) => {
        let text = '';
        res.setEncoding('latin1');
        res.on('data', (d: string) => { text += d; });
        res.on('end', () => resolve(text));
      }).on('error', reject);
    })));
  } finally {
    agent.destroy();
  }
}

describe('read buffers of upstream connections', () => {
  let h: Harness;
  let backend: Server;
  let accepted = 0;
  let port: number;
  let gc: () => void;

  const arrayBuffers = async (): Promise<number> => {
    for (let i = 0; i < 4; i += 1) { gc(); await new Promise((r) => setTimeout(r, 30)); }
    return process.memoryUsage().arrayBuffers;
  };

  before(async () => {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
    h = await startHarness({ activeHealthChecks: false, maxconnPerService: 1000 });
    // Holds the answers until the whole burst has arrived, so a burst needs a backend connection per
    // request (with a fixed delay, a client that came late on a loaded machine took a pooled one).
    let held: (() => void)[] = [];
    backend = createServer((req, res) => {
      held.push(() => res.end(req.url === '/big' ? BIG : SMALL));
      if (held.length < CONNECTIONS) return;
      for (const answer of held) answer();
      held = [];
    });
    backend.on('connection', () => { accepted += 1; });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    port = await freePort();
    h.marathon.putApp(app('/warm', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [(backend.address() as AddressInfo).port] }]);
    await h.waitTable((t) => t.services.length === 1, 'the service');
  });
  after(async () => {
    backend.closeAllConnections();
    backend.close();
    await h.close();
  });

  it('a hundred pooled connections that carried small answers hold 16 KiB each at rest; carrying bulk, they grow to 64 KiB and deliver every byte', async () => {
    const before = await arrayBuffers();
    const small = await burst(port, '/small');
    assert.ok(small.every((t) => t === SMALL), 'every small answer intact');
    assert.equal(accepted, CONNECTIONS, 'one backend connection per request');
    // Busy, a connection has a spare buffer too (an answer waits for the end of the turn in a view of
    // one); resting for a sweep (half a second), it lets the spare go.
    let pooledSmall = Infinity;
    await until(async () => (pooledSmall = (await arrayBuffers()) - before) < CONNECTIONS * 32 * 1024, 'the spare buffers let go', 3000)
      .catch(() => assert.fail(`${(pooledSmall / 1024 / 1024).toFixed(2)} MiB held by ${CONNECTIONS} pooled connections`));

    const big = await burst(port, '/big');
    assert.ok(big.every((t) => t === BIG), 'every 1 MB body intact');
    assert.equal(accepted, CONNECTIONS, 'the pooled connections were reused, none opened');
    const pooledBig = (await arrayBuffers()) - before;
    assert.ok(pooledBig >= CONNECTIONS * 64 * 1024, `${(pooledBig / 1024 / 1024).toFixed(2)} MiB once they carried bulk: full buffers`);
  });
});
