// RawSocket keeps net.Socket's meaning for what Turbine uses of it (plain HTTP listeners hand their
// connections over as RawSockets and the HTTP pool opens its backend connections as RawSockets, so
// every HTTP test runs on it; these pin its own contract down: half-close, backpressure, pause,
// timeouts, reset, connect), over real sockets with a net.Socket at the other end.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { RawSocket, rawSocketsAvailable, type TcpHandle } from '../../src/proxy/raw-socket.js';

interface Pair { raw: RawSocket; client: Socket; reads: Buffer[]; close: () => void }

/** A RawSocket on the accepted end of a connection, as Listeners makes them, and the client's net.Socket. */
async function pair(): Promise<Pair> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const handle = (server as unknown as { _handle: { onconnection: (err: number, client: TcpHandle) => void } })._handle;
  const accepted = new Promise<RawSocket>((resolve) => {
    handle.onconnection = (_err, client) => resolve(new RawSocket(client, Buffer.alloc(64 * 1024)));
  });
  // Half-open like Turbine's clients may be, so a test sees what the RawSocket does after the client's end.
  const client = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  client.on('error', () => {});
  const raw = await accepted;
  const reads: Buffer[] = [];
  raw.onBytes = (chunk) => { reads.push(Buffer.from(chunk)); };
  return { raw, client, reads, close: () => { raw.destroy(); client.destroy(); server.close(); } };
}

/** Runs `test` on a fresh pair, and closes both ends whatever happens. */
async function withPair(test: (pair: Pair) => Promise<void>): Promise<void> {
  const p = await pair();
  try {
    await test(p);
  } finally {
    p.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function collect(socket: Socket): { text: () => string; bytes: () => number } {
  const chunks: Buffer[] = [];
  let bytes = 0;
  socket.on('data', (c: Buffer) => { chunks.push(c); bytes += c.length; });
  return { text: () => Buffer.concat(chunks).toString('latin1'), bytes: () => bytes };
}

describe('RawSocket', () => {
  it('is what this Node runs plain HTTP listeners on', () => {
    assert.equal(rawSocketsAvailable, true);
  });

  it('reads into its buffer, writes buffers and latin1 strings, and knows its peer', () => withPair(async ({ raw, client, reads }) => {
    const got = collect(client);
    client.write('ping');
    await until(() => reads.length > 0, 'the read');
    assert.equal(Buffer.concat(reads).toString(), 'ping');
    assert.equal(raw.remoteAddress, '127.0.0.1');
    assert.equal(raw.write('caf\u00e9 '), true);
    assert.equal(raw.write(Buffer.from('ok')), true);
    await until(() => got.bytes() === 7, 'the answer');
    assert.equal(got.text(), 'caf\u00e9 ok');
  }));

  it('says false while the kernel holds bytes back, then drain, and keeps order', () => withPair(async ({ raw, client }) => {
    client.pause();
    const got = collect(client);
    const big = Buffer.alloc(32 * 1024 * 1024, 'x');
    assert.equal(raw.write(big), false);
    assert.equal(raw.writableNeedDrain, true);
    const drained = once(raw, 'drain');
    assert.equal(raw.write('tail'), false, 'queued behind the big write');
    client.resume();
    await drained;
    assert.equal(raw.writableNeedDrain, false);
    await until(() => got.bytes() === big.length + 4, 'every byte');
    assert.equal(got.text().slice(-5), 'xtail');
  }));

  it('half-close: the client ends, the socket still answers, then closes when it ends too', () => withPair(async ({ raw, client }) => {
    const got = collect(client);
    const ended = once(raw, 'end');
    client.end('last words');
    await ended;
    const closed = once(raw, 'close');
    raw.end('answer after your end');
    await closed;
    await once(client, 'end');
    assert.equal(got.text(), 'answer after your end');
  }));

  it('ending first: the client reads to its end, and the socket closes once the client ends', () => withPair(async ({ raw, client }) => {
    let closed = false;
    raw.on('close', () => { closed = true; });
    const got = collect(client);
    raw.end('bye');
    await once(client, 'end');
    assert.equal(got.text(), 'bye');
    await sleep(50);
    assert.equal(closed, false, 'half-open until the client ends');
    client.end();
    await until(() => closed, 'the close');
  }));

  it('paused, it reads nothing until resumed', () => withPair(async ({ raw, client, reads }) => {
    raw.pause();
    assert.equal(raw.isPaused(), true);
    client.write('while paused');
    await sleep(100);
    assert.equal(reads.length, 0);
    raw.resume();
    await until(() => reads.length > 0, 'the read after resume');
    assert.equal(Buffer.concat(reads).toString(), 'while paused');
  }));

  it('paused when the client ends: the data and then one end arrive after resume', () => withPair(async ({ raw, client, reads }) => {
    let ends = 0;
    raw.on('end', () => { ends += 1; });
    raw.pause();
    client.end('data then end');
    await sleep(100);
    assert.equal(reads.length, 0);
    assert.equal(ends, 0, 'the end waits behind the unread data');
    raw.resume();
    await until(() => ends === 1, 'the end');
    assert.equal(Buffer.concat(reads).toString(), 'data then end');
    await sleep(50);
    assert.equal(ends, 1, 'one end');
  }));

  it('end() behind a large queued write shuts only after every byte; a second end and later writes are ignored', () => withPair(async ({ raw, client }) => {
    client.pause();
    const got = collect(client);
    const big = Buffer.alloc(8 * 1024 * 1024, 'y');
    assert.equal(raw.write(big), false);
    raw.end('tail');
    raw.end();
    assert.equal(raw.write('after the end'), true);
    const clientEnded = once(client, 'end');
    client.resume();
    await clientEnded;
    assert.equal(got.bytes(), big.length + 4);
    assert.equal(got.text().slice(-5), 'ytail');
  }));

  it('destroyed inside its read callback: no further reads, one close, no end', () => withPair(async ({ raw, client }) => {
    const events: string[] = [];
    let reads = 0;
    raw.onBytes = () => { reads += 1; raw.destroy(); raw.destroy(); };
    raw.on('end', () => events.push('end'));
    raw.on('close', () => events.push('close'));
    client.write('first');
    await until(() => events.includes('close'), 'the close');
    client.end('more');
    await sleep(50);
    assert.equal(reads, 1);
    assert.deepEqual(events, ['close']);
  }));

  it('a write to a client that reset the connection closes it with an error, and without a listener the process stays up', () => withPair(async ({ raw, client }) => {
    // Not events.once: it listens for 'error', and this asserts what happens without a listener.
    const closed = new Promise((resolve) => raw.on('close', resolve));
    raw.pause(); // the reset is not read: the write is what meets it
    client.resetAndDestroy();
    await sleep(50);
    for (let i = 0; i < 100 && !raw.destroyed; i += 1) {
      raw.write(Buffer.alloc(64 * 1024));
      await sleep(5);
    }
    await closed;
    assert.equal(raw.destroyed, true);
  }));

  it('corked writes leave together, in order, at uncork', () => withPair(async ({ raw, client }) => {
    const got = collect(client);
    raw.cork();
    raw.write('head\r\n');
    raw.write(Buffer.from('body'));
    await sleep(50);
    assert.equal(got.bytes(), 0, 'nothing before uncork');
    raw.uncork();
    await until(() => got.bytes() === 10, 'the corked bytes');
    assert.equal(got.text(), 'head\r\nbody');
  }));

  it('times out after the set idle time, and activity puts it off', () => withPair(async ({ raw, client }) => {
    const started = performance.now();
    raw.setTimeout(150);
    const timedOut = once(raw, 'timeout');
    await sleep(100);
    client.write('still here');
    await timedOut;
    assert.ok(performance.now() - started >= 240, 'the read at 100 ms put the timeout off');
    assert.equal(raw.destroyed, false, 'a timeout only reports, as net.Socket');
  }));

  it('a write libuv finishes later counts as activity: the timeout is put off by the drain', () => withPair(async ({ raw, client }) => {
    client.pause();
    raw.setTimeout(500);
    assert.equal(raw.write(Buffer.alloc(16 * 1024 * 1024)), false);
    let drainedAt = 0;
    raw.once('drain', () => { drainedAt = performance.now(); });
    const timedOut = once(raw, 'timeout');
    await sleep(300);
    client.resume();
    await timedOut;
    assert.ok(drainedAt > 0, 'drained before the timeout');
    assert.ok(performance.now() - drainedAt >= 450, 'the timeout counted from the drain, not from the write');
  }));

  it('times out again after new activity, once per idle spell; setTimeout(0) stops it and drops the callback', () => withPair(async ({ raw, client }) => {
    let count = 0;
    const onTimeout = () => { count += 1; };
    raw.setTimeout(60, onTimeout);
    await until(() => count === 1, 'the first timeout');
    await sleep(200);
    assert.equal(count, 1, 'no second timeout without activity');
    raw.on('timeout', () => { count += 1; });
    client.write('back');
    await until(() => count === 2, 'a timeout after the new idle spell');
    raw.setTimeout(0, onTimeout);
    assert.equal(raw.listenerCount('timeout'), 1, 'the callback given with 0 is removed, as net.Socket does');
    client.write('again');
    await sleep(200);
    assert.equal(count, 2, 'no timeout once set to 0');
  }));

  it('resetAndDestroy while its end waits behind queued writes still closes it', () => withPair(async ({ raw, client }) => {
    client.pause();
    raw.write(Buffer.alloc(16 * 1024 * 1024));
    raw.end();
    const closed = once(raw, 'close');
    raw.resetAndDestroy();
    client.destroy();
    await closed; // hung before: libuv refuses a reset during a shutdown, and the handle never closed
  }));

  it('destroy(err) emits error before close; a client reset closes it with an error', async () => {
    const first = await pair();
    try {
      const events: string[] = [];
      first.raw.on('error', () => events.push('error'));
      first.raw.on('close', () => events.push('close'));
      const clientEnded = once(first.client, 'end');
      first.raw.destroy(new Error('cut'));
      await until(() => events.length === 2, 'both events');
      assert.deepEqual(events, ['error', 'close']);
      await clientEnded;
    } finally {
      first.close();
    }
    const second = await pair();
    try {
      const errors: string[] = [];
      second.raw.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code ?? ''));
      // Not events.once: it would reject at the 'error' that is expected here.
      const closed = new Promise((resolve) => second.raw.on('close', resolve));
      second.client.resetAndDestroy();
      await closed;
      assert.deepEqual(errors, ['ECONNRESET']);
    } finally {
      second.close();
    }
  });

  it('resetAndDestroy cuts the client with a reset, not an end', () => withPair(async ({ raw, client }) => {
    const error = once(client, 'error');
    raw.resetAndDestroy();
    const [err] = await error as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNRESET');
  }));

  describe('connect', () => {
    /** A server that answers each read with 'got:' and the bytes; what it accepted. */
    async function echoServer(): Promise<{ port: number; accepted: Socket[]; close: () => void }> {
      const accepted: Socket[] = [];
      const server = createServer((s) => {
        accepted.push(s);
        s.on('data', (d) => s.write(`got:${d}`));
        s.on('error', () => {});
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { port: (server.address() as AddressInfo).port, accepted, close: () => { for (const s of accepted) s.destroy(); server.close(); } };
    }

    it('connects, sends what was written before the connection was made, then reads the answer', async () => {
      const server = await echoServer();
      const raw = RawSocket.connect('127.0.0.1', server.port, Buffer.alloc(1024), null);
      try {
        const reads: Buffer[] = [];
        raw.onBytes = (chunk) => { reads.push(Buffer.from(chunk)); };
        assert.equal(raw.connecting, true);
        raw.write('early');
        await once(raw, 'connect');
        assert.equal(raw.connecting, false);
        await until(() => Buffer.concat(reads).toString() === 'got:early', 'the answer');
      } finally {
        raw.destroy();
        server.close();
      }
    });

    it('a refused connection emits error (ECONNREFUSED) and then close, once each', async () => {
      const server = await echoServer();
      server.close(); // the port is free again: nothing listens
      await sleep(20);
      const raw = RawSocket.connect('127.0.0.1', server.port, Buffer.alloc(1024), null);
      const events: string[] = [];
      raw.on('connect', () => events.push('connect'));
      raw.on('error', (err: NodeJS.ErrnoException) => events.push(`error ${err.code}`));
      raw.on('close', (hadError: boolean) => events.push(`close ${hadError}`));
      raw.write('lost');
      await until(() => events.length === 2, 'error and close');
      await sleep(50);
      assert.deepEqual(events, ['error ECONNREFUSED', 'close true']);
    });

    it('destroyed while connecting: one close, no connect, and what was written never reaches the server', async () => {
      const server = await echoServer();
      let received = 0;
      const raw = RawSocket.connect('127.0.0.1', server.port, Buffer.alloc(1024), null);
      const events: string[] = [];
      raw.on('connect', () => events.push('connect'));
      raw.on('close', () => events.push('close'));
      raw.write(Buffer.alloc(64 * 1024, 'x')); // large: handed to libuv at once, queued behind the connection
      raw.write('never sent'); // small: waits for the end of the turn
      raw.destroy();
      await sleep(100);
      for (const s of server.accepted) s.on('data', (d: Buffer) => { received += d.length; });
      await sleep(50);
      assert.deepEqual(events, ['close']);
      assert.equal(received, 0);
      server.close();
    });

    it('ended while connecting with nothing written: the server sees the end once connected, and the socket closes when the server ends too', async () => {
      const server = await echoServer();
      const raw = RawSocket.connect('127.0.0.1', server.port, Buffer.alloc(1024), null);
      try {
        let closed = false;
        raw.on('close', () => { closed = true; });
        raw.end();
        // The server (not half-open) ends its side when it reads the end: both shut, the socket closes.
        await until(() => closed, 'the close');
        assert.equal(server.accepted[0]?.readableEnded, true, 'the server read the end');
      } finally {
        raw.destroy();
        server.close();
      }
    });

    it('a buffer switch hands the buffer back from the read callback: the handle is given a buffer once (each useUserBuffer stacks a native listener, a leak per switch)', async () => {
      const server = createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const handle = (server as unknown as { _handle: { onconnection: (err: number, client: TcpHandle) => void } })._handle;
      let given = 0;
      const accepted = new Promise<RawSocket>((resolve) => {
        handle.onconnection = (_err, client) => {
          const use = client.useUserBuffer.bind(client);
          client.useUserBuffer = (buffer) => { given += 1; use(buffer); };
          resolve(new RawSocket(client, Buffer.alloc(1024), () => Buffer.alloc(1024)));
        };
      });
      const client = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' });
      const raw = await accepted;
      try {
        let reads = 0;
        raw.onBytes = () => { reads += 1; };
        for (let i = 0; i < 5; i += 1) {
          client.write(`read ${i}`);
          await until(() => reads > i, `read ${i}`);
        }
        assert.equal(given, 1, 'one buffer given at the start; the switches went back through the read callback');
      } finally {
        raw.destroy();
        client.destroy();
        server.close();
      }
    });

    it('reads move to the buffer nextBuffer gives, and stay while it gives undefined', async () => {
      const server = await echoServer();
      const first = Buffer.alloc(1024);
      const second = Buffer.alloc(1024);
      let handOut: Buffer | undefined = second;
      const raw = RawSocket.connect('127.0.0.1', server.port, first, () => { const b = handOut; handOut = undefined; return b; });
      try {
        const seen: ArrayBufferLike[] = [];
        raw.onBytes = (chunk) => { seen.push(chunk.buffer); };
        await once(raw, 'connect');
        for (const word of ['a', 'b', 'c']) {
          raw.write(word);
          const n = seen.length;
          await until(() => seen.length > n, `the answer to ${word}`);
        }
        assert.deepEqual(seen.map((b) => (b === first.buffer ? 'first' : b === second.buffer ? 'second' : 'other')), ['first', 'second', 'second']);
      } finally {
        raw.destroy();
        server.close();
      }
    });
  });
});
