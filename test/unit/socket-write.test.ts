// Direct writes to the socket handle. Were Node's stream_wrap internals not found, send() would
// fall back to socket.write and every other test would still pass: this one says the direct path
// is in use on the Node the project runs on, and that it keeps socket.write's contract (order,
// false when the kernel is full, 'drain' when it has taken everything).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { directWrites, send, writePending } from '../../src/proxy/socket-write.js';

async function pair(): Promise<{ writer: Socket; reader: Socket; close: () => void }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const writer = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(writer, 'connect');
  const [reader] = await accepted;
  reader.pause();
  return { writer, reader, close: () => { writer.destroy(); reader.destroy(); server.close(); } };
}

describe('direct socket writes', () => {
  it('are in use on this Node', () => {
    assert.equal(directWrites, true);
  });

  it('keep order and socket.write contract: true while the kernel takes it, false then drain when it does not', async () => {
    const { writer, reader, close } = await pair();
    try {
      assert.equal(send(writer, 'head\n'), true);
      assert.equal(writePending(writer), false);
      const big = Buffer.alloc(64 * 1024 * 1024, 'x');
      assert.equal(send(writer, big), false, 'a 64 MiB write to a reader that does not read');
      assert.equal(writePending(writer), true);
      // Queued behind it, through the same path: order is libuv's.
      send(writer, Buffer.from('\ntail'));
      const drained = once(writer, 'drain');
      const chunks: Buffer[] = [];
      reader.on('data', (d: Buffer) => chunks.push(d));
      reader.resume();
      await drained;
      assert.equal(writePending(writer), false);
      writer.end();
      await once(reader, 'end');
      const all = Buffer.concat(chunks);
      assert.equal(all.length, 5 + big.length + 5);
      assert.equal(all.subarray(0, 5).toString(), 'head\n');
      assert.equal(all.subarray(-5).toString(), '\ntail');
      assert.equal(all.indexOf('\n', 5), 5 + big.length, 'no byte of the tail inside the body');
    } finally {
      close();
    }
  });
});
