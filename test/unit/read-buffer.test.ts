// Client sockets read into one shared buffer through Node's user-buffer hooks. Were the hooks not
// found (a Node that renamed them), Turbine would fall back to 'data' events and every other test
// would still pass: this one says the shared buffer is in use on the Node the project runs on.
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { owned, readIntoSharedBuffer } from '../../src/proxy/read-buffer.js';

describe('the shared client read buffer', () => {
  it('takes an accepted plain socket on this Node: its reads arrive as views that owned() copies', async () => {
    const got = await new Promise<{ taken: boolean; text: string; view: boolean }>((resolve, reject) => {
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
        const client = connect((server.address() as AddressInfo).port, '127.0.0.1', () => client.end('hello'));
        client.on('error', reject);
      });
    });
    assert.deepEqual(got, { taken: true, text: 'hello', view: true });
  });

  it('owned() leaves a buffer of its own as it is', () => {
    const b = Buffer.from('mine');
    assert.equal(owned(b), b);
  });
});
