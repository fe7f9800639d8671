import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Balancer } from '../../src/proxy/balancer.js';
import type { Backend } from '../../src/routing/table.js';

const backends: Backend[] = ['a', 'b', 'c'].map((n, i) => ({ address: `${n}:1`, host: n, port: 1, checkPort: 1, taskId: `t${i}`, appId: '/x', startedAt: null }));
const allUp = () => true;

describe('Balancer', () => {
  it('roundrobin visits every backend in turn', () => {
    const b = new Balancer('roundrobin');
    assert.deepEqual([0, 1, 2, 3].map(() => b.pick(backends, allUp, '')!.address), ['a:1', 'b:1', 'c:1', 'a:1']);
  });

  it('roundrobin skips backends that are down', () => {
    const b = new Balancer('roundrobin');
    const picks = new Set([0, 1, 2, 3, 4, 5].map(() => b.pick(backends, (a) => a !== 'b:1', '')!.address));
    assert.deepEqual([...picks].sort(), ['a:1', 'c:1']);
  });

  it('no live backend gives null', () => {
    assert.equal(new Balancer('roundrobin').pick(backends, () => false, ''), null);
    assert.equal(new Balancer('leastconn').pick([], allUp, ''), null);
  });

  it('leastconn picks the backend with fewest in flight', () => {
    const b = new Balancer('leastconn');
    b.acquire('a:1');
    b.acquire('a:1');
    b.acquire('c:1');
    assert.equal(b.pick(backends, allUp, '')!.address, 'b:1');
    b.release('a:1');
    b.release('a:1');
    b.acquire('b:1');
    assert.equal(b.pick(backends, allUp, '')!.address, 'a:1');
  });

  it('source sends one client to one backend, and different clients spread', () => {
    const b = new Balancer('source');
    const first = b.pick(backends, allUp, '10.1.2.3')!.address;
    for (let i = 0; i < 5; i += 1) assert.equal(b.pick(backends, allUp, '10.1.2.3')!.address, first);
    const spread = new Set(Array.from({ length: 50 }, (_, i) => b.pick(backends, allUp, `10.0.0.${i}`)!.address));
    assert.equal(spread.size, 3);
  });

  it('a retry avoids the backend that failed when another is live', () => {
    const b = new Balancer('roundrobin');
    for (let i = 0; i < 6; i += 1) assert.notEqual(b.pick(backends, allUp, '', backends[1]!)!.address, 'b:1');
  });
});
