import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BATCHED_BYTES, batchFlushes, TurnBatch, type Sink } from '../../src/proxy/turn-batch.js';

/** What reached the sink, as text per call (a writev's pieces joined). */
function recorder(answer = true): { sink: Sink; calls: string[] } {
  const calls: string[] = [];
  const sink: Sink = (data) => {
    calls.push(Array.isArray(data) ? Buffer.concat(data).toString('latin1') : data.toString('latin1'));
    return answer;
  };
  return { sink, calls };
}

/** The batch's flush was scheduled before this, so it has run when this resolves. */
const endOfTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('a turn batch', () => {
  it('keeps small writes until the end of the turn, then sends them in order in one call', async () => {
    const { sink, calls } = recorder();
    const batch = new TurnBatch(sink, () => false);
    const flushes = batchFlushes();
    assert.equal(batch.write('GET / HTTP/1.1\r\n'), true);
    assert.equal(batch.write(Buffer.from('host: a\r\n\r\n')), true);
    assert.deepEqual(calls, [], 'nothing sent during the turn');
    assert.equal(batch.waiting, true);
    await endOfTurn();
    assert.deepEqual(calls, ['GET / HTTP/1.1\r\nhost: a\r\n\r\n']);
    assert.equal(batch.waiting, false);
    assert.equal(batchFlushes(), flushes + 1, 'the flush count moved on once');
  });

  it('sends a large write at once, after what waits, and passes on the sink\'s answer', () => {
    const { sink, calls } = recorder(false);
    const batch = new TurnBatch(sink, () => false);
    batch.write('head ');
    const big = Buffer.alloc(BATCHED_BYTES + 1, 'b');
    assert.equal(batch.write(big), false, 'the kernel did not take it all');
    assert.deepEqual(calls, [`head ${big.toString()}`]);
    assert.equal(batch.waiting, false);
  });

  it('sends at once while the kernel holds bytes back, so the writer hears false and waits for drain', () => {
    const { sink, calls } = recorder(false);
    let backedUp = false;
    const batch = new TurnBatch(sink, () => backedUp);
    batch.write('a');
    backedUp = true;
    assert.equal(batch.write('b'), false);
    assert.deepEqual(calls, ['ab'], 'in order, with what waited');
  });

  it('forgets what waits when its socket is gone', async () => {
    const { sink, calls } = recorder();
    const batch = new TurnBatch(sink, () => false);
    batch.write('lost');
    batch.drop();
    await endOfTurn();
    assert.deepEqual(calls, []);
  });

  it('sends nothing more for a batch flushed early, and takes new writes for the end of the turn', async () => {
    const { sink, calls } = recorder();
    const batch = new TurnBatch(sink, () => false);
    batch.write('one');
    batch.flush(); // before a shutdown
    batch.write('two');
    await endOfTurn();
    assert.deepEqual(calls, ['one', 'two']);
  });
});
