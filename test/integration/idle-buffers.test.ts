// Each upstream connection reads into a 64 KiB buffer of its own while it is busy; pooled and idle
// for a while, it gives the buffer back. With many backends kept warm, buffers held by idle
// connections were most of Turbine's memory. Turbine runs in this process, so the test reads its
// ArrayBuffer memory directly.
import assert from 'node:assert/strict';
import { createServer, get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort } from '../support/net.js';

const CONNECTIONS = 100;
const BODY = Array.from({ length: 200_000 }, (_, i) => String.fromCharCode(97 + ((i * 7 + (i >> 9)) % 26))).join('');

/** `CONNECTIONS` requests at once, each on a client connection of its own: as many upstream connections. */
function burst(port: number): Promise<string[]> {
  return Promise.all(Array.from({ length: CONNECTIONS }, () => new Promise<string>((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => resolve(text));
    }).on('error', reject);
  })));
}

describe('idle upstream connections give their read buffers back', () => {
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
    // Holds each answer 300 ms, so a burst needs a backend connection per request.
    backend = createServer((_req, res) => setTimeout(() => res.end(BODY), 300));
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

  it('a hundred pooled connections idle for a second hold no read buffers; reused, they deliver every byte', async () => {
    const first = await burst(port);
    assert.ok(first.every((t) => t === BODY), 'every body intact');
    assert.equal(accepted, CONNECTIONS, 'one backend connection per request');
    const busy = await arrayBuffers();
    await new Promise((r) => setTimeout(r, 1_200)); // past the pool's sweep: idle connections park
    const parked = await arrayBuffers();
    // 100 x 64 KiB: all but a few spares kept for reuse are gone.
    assert.ok(busy - parked > 4 * 1024 * 1024, `${((busy - parked) / 1024 / 1024).toFixed(1)} MiB given back`);

    const again = await burst(port);
    assert.ok(again.every((t) => t === BODY), 'every body intact through parked connections');
    assert.equal(accepted, CONNECTIONS, 'the parked connections were reused, none opened');
  });
});
