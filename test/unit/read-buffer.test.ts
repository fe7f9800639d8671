// Client sockets read into one shared buffer through Node's user-buffer hooks. Were the hooks not
// found (a Node that renamed them), Turbine would fall back to 'data' events and every other test
// would still pass: this one says the shared buffer is in use on the Node the project runs on.
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { describe, it } from 'node:test';
import type { ClientSocket } from '../../src/proxy/raw-socket.js';
import { owned, readIntoSharedBuffer, reusedReadBuffer, type ReusedReads } from '../../src/proxy/read-buffer.js';
import { fixtureCertText } from '../support/tls.js';

type Accepting = (onSocket: (socket: Socket) => void) => { listen(port: number, host: string, cb: () => void): unknown; address(): unknown; close(): unknown };

/** What readIntoSharedBuffer makes of the first read of an accepted socket that receives 'hello'. */
function firstRead(createServer: Accepting, connectTo: (port: number, onConnect: () => void) => Socket): Promise<{ taken: boolean; text: string; view: boolean }> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => {
      const taken = readIntoSharedBuffer(socket, (chunk) => {
        const copy = owned(chunk);
        resolve({ taken, text: copy.toString(), view: copy !== chunk && copy.buffer !== chunk.buffer });
        socket.destroy();
        server.close();
      });
      if (!taken) {
        resolve({ taken, text: '', view: false });
        socket.destroy();
        server.close();
      }
    });
    server.listen(0, '127.0.0.1', () => {
      const client = connectTo((server.address() as AddressInfo).port, () => client.end('hello'));
      client.on('error', reject);
    });
  });
}

describe('the shared client read buffer', () => {
  it('takes an accepted plain socket on this Node: its reads arrive as views that owned() copies', async () => {
    const got = await firstRead((on) => createServer(on), (port, cb) => connect(port, '127.0.0.1', cb));
    assert.deepEqual(got, { taken: true, text: 'hello', view: true });
  });

  it('takes an accepted TLS socket too: its decrypted reads arrive the same way', async () => {
    const pem = fixtureCertText('default');
    const got = await firstRead((on) => createTlsServer({ key: pem, cert: pem }, on),
      (port, cb) => tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, cb));
    assert.deepEqual(got, { taken: true, text: 'hello', view: true });
  });

  it('owned() leaves a buffer of its own as it is', () => {
    const b = Buffer.from('mine');
    assert.equal(owned(b), b);
  });
});

/**
 * A backend connection's buffers, with stand-in writers whose pending writes the test sets (as a
 * RawSocket reports them): `holds` says whether the write of the next read stays pending.
 */
function backendReads(): { reads: ReusedReads; writers: { writePending: boolean }[]; to: { writer: number; holds: boolean } } {
  const writers = [{ writePending: false }, { writePending: false }];
  const to = { writer: 0, holds: false };
  const reads = reusedReadBuffer(() => { writers[to.writer]!.writePending = to.holds; }, () => writers[to.writer] as unknown as ClientSocket);
  return { reads, writers, to };
}

/** A 100-byte read into `buffer`, then the buffer Node reads into next (buffer() says undefined: the same). */
function readInto(reads: ReusedReads, buffer: Buffer): Buffer {
  reads.callback(100, buffer);
  return reads.buffer() ?? buffer;
}

describe('a backend connection\'s read buffers', () => {
  it('stay the same while no write holds them', () => {
    const { reads } = backendReads();
    const a = reads.buffer();
    assert.equal(readInto(reads, a), a);
  });

  it('alternate between two while every write is held, taking the earlier one back once its write is out', () => {
    const { reads, writers, to } = backendReads();
    to.holds = true;
    const a = reads.buffer();
    const b = readInto(reads, a);
    assert.notEqual(b, a, 'the held buffer is not read into');
    writers[0]!.writePending = false; // a's write is out before the next read
    assert.equal(readInto(reads, b), a, 'the spare, free again');
    const c = readInto(reads, a); // b's write is still pending
    assert.notEqual(c, b, 'a spare whose write is pending is not read into');
    assert.notEqual(c, a);
  });

  it('keep a spare held by an earlier owner while the new owner has nothing pending', () => {
    const { reads, to } = backendReads();
    to.holds = true;
    const a = reads.buffer();
    const b = readInto(reads, a);
    to.writer = 1; // the pooled connection serves another client; the first one's write still holds a
    const c = readInto(reads, b);
    assert.notEqual(c, a);
    assert.notEqual(c, b);
  });

  it('let the spare go when the connection goes idle', () => {
    const { reads, writers, to } = backendReads();
    to.holds = true;
    const a = reads.buffer();
    const b = readInto(reads, a);
    writers[0]!.writePending = false;
    reads.callback(100, b);
    reads.dropSpare();
    assert.notEqual(reads.buffer(), a);
  });
});
