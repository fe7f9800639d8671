// Large admin answers are written a slice at a time: /routes' text must be
// JSON.stringify(value, null, 2)'s, and a large answer must let the event loop turn (serve
// traffic) before it is done.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { prettyJson, sliced } from '../../src/admin/slices.js';
import { readCountingTurns } from '../support/loop.js';

const text = (value: Record<string, unknown>) => [...prettyJson(value)].join('');

const pretty = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

describe('prettyJson and sliced', () => {
  it('writes what JSON.stringify(value, null, 2) writes, for any JSON object', () => {
    fc.assert(fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (value) => {
      assert.equal(text(value), pretty(value));
    }), { numRuns: 300 });
  });

  it('leaves out what JSON.stringify leaves out, writes null for it in a list, and writes a generator as the array of its items', () => {
    const value = {
      gone: undefined, fn: () => 1, empty: [], none: {}, text: 'a "quoted"\nline', nested: { list: [1, { a: [] }] },
      holes: [undefined, () => 2, 3],
      made: (function* () { yield { id: 1 }; yield { id: 2, tags: ['x'] }; })(),
    };
    const expected = pretty({ ...value, made: [{ id: 1 }, { id: 2, tags: ['x'] }] });
    assert.equal(text(value), expected);
    assert.equal(text({}), '{}\n');
  });

  it('writes a long list in slices of its pieces, the event loop turning between two', async () => {
    const services = Array.from({ length: 5_000 }, (_, i) => ({ id: `/app-${i}:0`, backends: [{ address: `10.0.0.${i % 250}:31000`, state: 'up', reasons: [] }] }));
    const { slices, turns } = await readCountingTurns(sliced(prettyJson({ generation: 7, services })));
    assert.ok(slices.length > 3, `${slices.length} slices`);
    assert.ok(turns >= slices.length - 1, `the event loop turned ${turns} times while ${slices.length} slices were written`);
    assert.equal(slices.join(''), pretty({ generation: 7, services }));
  });
});
