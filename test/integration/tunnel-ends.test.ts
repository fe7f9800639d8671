// How a byte tunnel ends, in TCP mode and in an HTTP upgrade's tunnel: a side that is reset makes
// the other side see a reset (never a clean end that would pass a cut stream as complete), and a
// side that closes cleanly does not cut off what the other side still has to send.
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, until } from '../support/net.js';

type Mode = 'tcp' | 'upgrade';

/** How a socket's stream ended: a clean end of stream, or the error that cut it. */
function ending(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.once('end', () => resolve('end'));
  });
}

describe('tunnel ends', () => {
  let h: Harness;
  const ports: Record<Mode, number> = { tcp: 0, upgrade: 0 };
  /** Backend sockets in the order they arrive, the upgrade's after its 101. */
  const arrivals: Socket[] = [];
  let tcpBackend: Server;
  let upgradeBackend: ReturnType<typeof createHttpServer>;

  before(async () => {
    tcpBackend = createServer({ allowHalfOpen: true }, (s) => arrivals.push(s));
    upgradeBackend = createHttpServer((_req, res) => res.end('plain'));
    upgradeBackend.on('upgrade', (_req, s: Socket) => {
      s.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: raw\r\nconnection: upgrade\r\n\r\n');
      arrivals.push(s);
    });
    await new Promise<void>((r) => tcpBackend.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => upgradeBackend.listen(0, '127.0.0.1', r));
    h = await startHarness({ activeHealthChecks: false });
    [ports.tcp, ports.upgrade] = [await freePort(), await freePort()];
    h.marathon.putApp(app('/raw', ports.tcp, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'tcp' }), [{ host: '127.0.0.1', ports: [(tcpBackend.address() as AddressInfo).port] }]);
    h.marathon.putApp(app('/ws', ports.upgrade, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [(upgradeBackend.address() as AddressInfo).port] }]);
    await h.waitTable((t) => t.services.length === 2, 'both services');
  });

  after(async () => {
    for (const s of arrivals) s.destroy();
    tcpBackend.close();
    upgradeBackend.close();
    await h.close();
  });

  /** A client through Turbine and the backend's socket for it, the tunnel open both ways. */
  async function open(mode: Mode): Promise<{ client: Socket; backend: Socket }> {
    const before = arrivals.length;
    const client = await until(() => new Promise<Socket | null>((resolve) => {
      const s = connect({ port: ports[mode], host: '127.0.0.1', allowHalfOpen: true }, () => resolve(s));
      s.once('error', () => resolve(null));
    }), 'the listener');
    if (mode === 'upgrade') {
      client.write('GET /ws HTTP/1.1\r\nHost: t.test\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\n');
      let head = '';
      await new Promise<void>((resolve) => {
        const onData = (d: Buffer) => {
          head += d.toString('latin1');
          if (!head.includes('\r\n\r\n')) return;
          client.off('data', onData);
          resolve();
        };
        client.on('data', onData);
      });
      assert.match(head, /^HTTP\/1\.1 101/);
    }
    const backend = await until(() => arrivals[before], 'the backend connection');
    return { client, backend };
  }

  for (const mode of ['tcp', 'upgrade'] as const) {
    for (const [cut, other] of [['client', 'backend'], ['backend', 'client']] as const) {
      it(`${mode}: a ${cut} reset mid-stream reaches the ${other} as a reset, not an end of stream`, async () => {
        const ends = await open(mode);
        const seen = ending(ends[other]);
        ends[cut].write('partial');
        await new Promise<void>((resolve) => ends[other].once('data', () => resolve()));
        ends[cut].resetAndDestroy();
        assert.equal(await seen, 'ECONNRESET');
      });
    }

    it(`${mode}: the backend ends first, the client then uploads 2 MB and ends: a slow backend reads every byte, then the end`, async () => {
      const { client, backend } = await open(mode);
      backend.end(); // half-close: the backend has said all it had to
      await new Promise<void>((resolve) => client.once('end', () => resolve()));
      const upload = Buffer.alloc(2 * 1024 * 1024, 'u');
      let got = 0;
      const done = new Promise<string>((resolve) => {
        backend.on('data', (d: Buffer) => {
          got += d.length;
          // A slow reader: Turbine holds bytes for it when the client's end arrives.
          backend.pause();
          setTimeout(() => backend.resume(), 2);
        });
        backend.once('end', () => resolve('end'));
        backend.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
      client.write(upload);
      client.write(Buffer.alloc(3000, 't')); // a small last piece, which the socket's own buffer takes at once
      client.end();
      assert.equal(await done, 'end');
      assert.equal(got, upload.length + 3000, 'every byte before the end');
    });
  }
});
