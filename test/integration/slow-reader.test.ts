// A client that reads slowly must not make Turbine hold the response: Turbine stops reading from
// the backend while the client's socket is full (backpressure), so a fast backend is held back to
// what the kernel's socket buffers hold, whatever the size of the response. Were Turbine to read
// on regardless, the backend would write the whole body while the client has read almost nothing.
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { app, startHarness, type Harness } from '../support/harness.js';
import { freePort, until, untilServed } from '../support/net.js';

const MiB = 1024 * 1024;
const TOTAL = 256 * MiB;
/** Read by the client before it stops reading. */
const READ_FIRST = 1 * MiB;
/**
 * What may sit between a backend and a client that stopped reading: four kernel socket buffers on
 * loopback (about 10 MiB in all on the project's machine) and Turbine's small write queue. Far
 * below the 256 MiB the backend writes when nothing holds it back.
 */
const MAX_AHEAD = 64 * MiB;

/** A backend that writes TOTAL bytes as fast as its socket takes them, and says how far it got. */
function fastBackend() {
  const block = Buffer.alloc(64 * 1024, 0x61);
  const state = { written: 0, blocked: false };
  const pump = (res: ServerResponse) => {
    state.blocked = false;
    while (state.written < TOTAL) {
      state.written += block.length;
      if (!res.write(block)) {
        state.blocked = true;
        res.once('drain', () => pump(res));
        return;
      }
    }
    res.end();
  };
  const server = createServer((req, res) => {
    if (req.url === '/ready') {
      res.end('ready');
      return;
    }
    state.written = 0;
    // /chunked: no length, so Node frames the body chunked for Turbine's HTTP/1.1 request.
    if (req.url !== '/chunked') res.setHeader('content-length', TOTAL);
    pump(res);
  });
  return { server, state };
}

/**
 * Sends `request`, reads READ_FIRST body bytes, stops reading until the backend has been blocked and
 * still for a while, then reads the rest. Returns how far the backend was ahead while the client
 * stood still, and the body bytes received in all.
 */
function slowDownload(port: number, request: string, backend: { written: number; blocked: boolean }): Promise<{ ahead: number; body: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let head = Buffer.alloc(0);
    let body = -1;
    let ahead = -1;
    socket.on('data', (chunk: Buffer) => {
      if (body === -1) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        body = head.length - end - 4;
      } else body += chunk.length;
      if (ahead === -1 && body >= READ_FIRST) {
        ahead = 0;
        socket.pause();
        void waitStill(backend).then(() => {
          ahead = backend.written - body;
          socket.resume();
        }, reject);
      }
    });
    socket.on('end', () => resolve({ ahead, body }));
    socket.on('error', reject);
  });
}

/** The backend stopped: blocked by its socket and no byte further for 500 ms, or done. */
async function waitStill(backend: { written: number; blocked: boolean }): Promise<void> {
  let last = -1;
  await until(async () => {
    if (backend.written >= TOTAL) return true;
    const now = backend.written;
    const still = backend.blocked && now === last;
    last = now;
    await new Promise((r) => setTimeout(r, 500));
    return still && backend.written === now;
  }, 'the backend to stand still', 60_000);
}

describe('a slow reader', () => {
  let h: Harness;
  let port: number;
  const backend = fastBackend();

  before(async () => {
    await new Promise<void>((r) => backend.server.listen(0, '127.0.0.1', r));
    h = await startHarness({ activeHealthChecks: false });
    port = await freePort();
    h.marathon.putApp(app('/download', port, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }),
      [{ host: '127.0.0.1', ports: [(backend.server.address() as AddressInfo).port] }]);
    await untilServed(`http://127.0.0.1:${port}/ready`, 'the download service');
  });

  after(async () => {
    await h.close();
    backend.server.closeAllConnections();
    backend.server.close();
  });

  it('holds a fast backend back while the client does not read, then gets the whole 256 MiB body', async () => {
    const { ahead, body } = await slowDownload(port, 'GET /length HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n', backend.state);
    assert.ok(ahead < MAX_AHEAD, `the backend wrote ${(ahead / MiB).toFixed(1)} MiB more than the client read`);
    assert.equal(body, TOTAL);
  });

  it('holds the backend back for an HTTP/1.0 client of a chunked response too', async () => {
    const { ahead, body } = await slowDownload(port, 'GET /chunked HTTP/1.0\r\nHost: a.test\r\n\r\n', backend.state);
    assert.ok(ahead < MAX_AHEAD, `the backend wrote ${(ahead / MiB).toFixed(1)} MiB more than the client read`);
    assert.equal(body, TOTAL);
  });
});
