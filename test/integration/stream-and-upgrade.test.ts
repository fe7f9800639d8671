// A silent event stream is detected and replaced; WebSocket upgrades tunnel through HTTP ports.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { app, startHarness } from '../support/harness.js';
import { freePort, until } from '../support/net.js';

describe('event stream stall', () => {
  it('a stream silent for --event-stall-timeout is reconnected and followed by a resync', async () => {
    const h = await startHarness({ eventStallTimeout: 0.3 });
    try {
      await until(() => h.marathon.streamCount() === 1, 'stream open');
      const fetches = h.marathon.requests.apps;
      await until(async () => await h.metric('turbine_marathon_stream_reconnects_total', { reason: 'stall' }) >= 1, 'a stall detected');
      await until(() => h.marathon.requests.apps > fetches, 'a resync after reconnecting');
    } finally {
      await h.close();
    }
  });
});

describe('WebSocket upgrade', () => {
  it('an Upgrade request on an HTTP service port is tunnelled to the backend both ways', async () => {
    const backend = createServer((_req, res) => res.end('plain'));
    backend.on('upgrade', (req, socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nx-saw-xff: ${req.headers['x-forwarded-for']}\r\n\r\n`);
      socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}`));
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const h = await startHarness();
    try {
      const port = await freePort();
      h.marathon.putApp(app('/ws', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }), [{ host: '127.0.0.1', ports: [(backend.address() as AddressInfo).port] }]);
      await h.waitTable((t) => t.services.length === 1, 'the ws service');
      await until(async () => new Promise<boolean>((resolve) => {
        const probe = connect(port, '127.0.0.1', () => { probe.destroy(); resolve(true); });
        probe.on('error', () => resolve(false));
      }), 'the listener');
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let text = '';
        socket.on('connect', () => socket.write('GET /chat HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'));
        socket.on('data', (d: Buffer) => {
          text += d.toString();
          if (text.includes('\r\n\r\n') && !text.includes('echo:')) socket.write('hello');
          if (text.includes('echo:hello')) {
            socket.destroy();
            resolve(text);
          }
        });
        socket.on('error', reject);
      });
      assert.match(reply, /^HTTP\/1\.1 101/);
      assert.match(reply, /x-saw-xff: 127\.0\.0\.1/);
      assert.match(reply, /echo:hello$/);
    } finally {
      await h.close();
      backend.closeAllConnections();
      backend.close();
    }
  });
});
