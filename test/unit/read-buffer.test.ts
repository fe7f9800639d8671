// Client sockets read into one shared buffer through Node's user-buffer hooks. Were the hooks not
// found (a Node that renamed them), Turbine would fall back to 'data' events and every other test
// would still pass: this one says the shared buffer is in use on the Node the project runs on.
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { describe, it } from 'node:test';
import { owned, readIntoSharedBuffer } from '../../src/proxy/read-buffer.js';
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
