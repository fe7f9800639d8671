// Connections that ended leave nothing behind: every way a client connection can end (closed while
// idle, Connection: close, gone mid-exchange, gone mid-head, a tunnel closed) lets its objects be
// collected, and so do upstream connections whose backend closed them. A timer, a pool list or a
// stream registry still pointing at them would grow Turbine's memory with every connection.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ClientConnection } from '../../src/proxy/http1/connection.js';
import { UpstreamConnection } from '../../src/proxy/http1/upstream.js';
import { RawSocket } from '../../src/proxy/raw-socket.js';
import { app, startHarness, type Harness } from '../support/harness.js';
import { liveInstances } from '../support/heap.js';
import { freePort, until } from '../support/net.js';

/** Clients per way of ending. */
const EACH = 40;

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
}

/** Writes `request` and resolves once the received bytes contain `marker`. */
function exchange(socket: Socket, request: string, marker: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (chunk: Buffer) => {
      got += chunk.toString('latin1');
      if (!got.includes(marker)) return;
      socket.off('data', onData);
      resolve();
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(request);
  });
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => { if (socket.closed) resolve(); else socket.once('close', () => resolve()); });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('memory after connections end', () => {
  let h: Harness;
  let backend: Server;
  let port: number;

  before(async () => {
    h = await startHarness({ activeHealthChecks: false, maxconnPerService: 1000 });
    backend = createServer((req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('late'), 300);
      else res.end('answer');
    });
    backend.on('upgrade', (_req, socket: Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
      socket.on('data', (chunk) => socket.write(chunk));
      socket.on('end', () => socket.end()); // as a WebSocket server does; a half-closed tunnel stays until --timeout-tunnel
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    port = await freePort();
    h.marathon.putApp(app('/kept', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }),
      [{ host: '127.0.0.1', ports: [(backend.address() as AddressInfo).port] }]);
    await h.waitTable((t) => t.services.length === 1, 'the service');
  });
  after(async () => {
    backend.closeAllConnections();
    backend.close();
    await h.close();
  });

  it('are collected however the connections ended', async () => {
    const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: kept.test\r\n${extra}\r\n`;
    const before = await liveInstances(ClientConnection);

    // Idle keep-alive connections after two exchanges each: alive, and counted as such.
    const idle = await Promise.all(Array.from({ length: EACH }, async () => {
      const socket = await open(port);
      await exchange(socket, get('/'), 'answer');
      await exchange(socket, get('/'), 'answer');
      return socket;
    }));
    // Tunnels, open and echoing.
    const tunnels = await Promise.all(Array.from({ length: EACH }, async () => {
      const socket = await open(port);
      await exchange(socket, get('/ws', 'Connection: Upgrade\r\nUpgrade: echo\r\n'), '\r\n\r\n');
      await exchange(socket, 'ping', 'ping');
      return socket;
    }));
    assert.ok(await liveInstances(ClientConnection) >= before + 2 * EACH, 'the open connections are counted (the probe sees them)');

    const ending: Promise<void>[] = [];
    for (const socket of [...idle, ...tunnels]) {
      socket.destroy();
      ending.push(closed(socket));
    }
    for (let i = 0; i < EACH; i += 1) {
      ending.push((async () => {
        const socket = await open(port); // Connection: close, read to the end
        await exchange(socket, get('/', 'Connection: close\r\n'), 'answer');
        await closed(socket);
      })());
      ending.push((async () => {
        const socket = await open(port); // gone while the backend works on its request
        socket.write(get('/slow'));
        await sleep(50);
        socket.destroy();
      })());
      ending.push((async () => {
        const socket = await open(port); // gone in the middle of its request head
        socket.write('GET / HTTP/1.1\r\nHo');
        await sleep(20);
        socket.destroy();
      })());
    }
    await Promise.all(ending);
    await sleep(400); // the slow backend answers land on upstream connections whose client left

    await until(async () => await liveInstances(ClientConnection) === before, 'client connections collected');
    // Pooled upstream connections stay until the backend (or the idle sweep) closes them; then they go too.
    assert.equal(await liveInstances(RawSocket), await liveInstances(UpstreamConnection), 'no accepted socket left: the RawSockets left are pooled backend connections');
    backend.closeAllConnections();
    await until(async () => await liveInstances(UpstreamConnection) === 0, 'upstream connections collected once their backend closed them');
    assert.equal(await liveInstances(RawSocket), 0, 'no socket left');
  });
});
