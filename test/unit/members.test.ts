// Members: the collection a listener keeps its open connections in (and a backend its upstream
// connections, and its streams). Removal in any order keeps the rest; a removed entry lets its value go.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Members } from '../../src/proxy/members.js';

describe('Members', () => {
  it('keeps what was added and not removed, whatever the order of removal', () => {
    const members = new Members<string>();
    const handles = ['a', 'b', 'c', 'd', 'e'].map((v) => members.add(v));
    assert.equal(members.delete(handles[1]!), true);
    assert.equal(members.delete(handles[4]!), true);
    assert.equal(members.delete(handles[0]!), true);
    assert.deepEqual(members.values().sort(), ['c', 'd']);
    assert.equal(members.size, 2);
    const f = members.add('f');
    assert.equal(members.delete(handles[3]!), true);
    assert.deepEqual(members.values().sort(), ['c', 'f']);
    assert.equal(members.delete(f), true);
    assert.equal(members.delete(handles[2]!), true);
    assert.equal(members.size, 0);
    assert.deepEqual(members.values(), []);
  });

  it('removing twice is refused the second time and removes nothing else', () => {
    const members = new Members<number>();
    const one = members.add(1);
    members.add(2);
    assert.equal(members.delete(one), true);
    assert.equal(members.delete(one), false);
    assert.deepEqual(members.values(), [2]);
  });

  it('a removed entry no longer holds its value', () => {
    const members = new Members<object>();
    const entry = members.add({ connection: true });
    members.delete(entry);
    assert.equal(entry.value, null);
  });

  it('values() is a copy: removing each while walking it reaches all', () => {
    const members = new Members<{ n: number }>();
    const items = [1, 2, 3, 4].map((n) => ({ n }));
    const handles = items.map((item) => members.add(item));
    const seen: number[] = [];
    for (const item of members.values()) {
      seen.push(item.n);
      members.delete(handles[item.n - 1]!);
    }
    assert.deepEqual(seen.sort(), [1, 2, 3, 4]);
    assert.equal(members.size, 0);
  });
});
