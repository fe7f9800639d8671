// Balancing over a service's backends: roundrobin, leastconn, source. A Balancer lives as long as
// its service (across routing tables) so rotation and connection counts survive a table swap.
import { hash } from '../common/hash.js';
import type { Balance } from '../routing/labels.js';
import type { Backend } from '../routing/table.js';

export type IsUp = (address: string) => boolean;

export class Balancer {
  private next = 0;
  /** Requests or connections in flight per backend address (leastconn reads it, all maintain it). */
  readonly inFlight = new Map<string, number>();

  constructor(public balance: Balance) {}

  /** A live backend, or null when none is. `avoid` is skipped when another is live (retries). */
  pick(backends: readonly Backend[], isUp: IsUp, clientAddress: string, avoid: Backend | null = null): Backend | null {
    const n = backends.length;
    if (n === 0) return null;
    if (this.balance === 'leastconn') return this.leastconn(backends, isUp, avoid);
    const start = this.balance === 'source' ? hash(clientAddress) % n : this.next++ % n;
    if (this.next > 0x3fffffff) this.next = 0;
    let fallback: Backend | null = null;
    for (let i = 0; i < n; i += 1) {
      const candidate = backends[(start + i) % n]!;
      if (!isUp(candidate.address)) continue;
      if (candidate !== avoid) return candidate;
      fallback = candidate;
    }
    return fallback;
  }

  acquire(address: string): void {
    this.inFlight.set(address, (this.inFlight.get(address) ?? 0) + 1);
  }

  release(address: string): void {
    const n = (this.inFlight.get(address) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(address);
    else this.inFlight.set(address, n);
  }

  private leastconn(backends: readonly Backend[], isUp: IsUp, avoid: Backend | null): Backend | null {
    let best: Backend | null = null;
    let bestLoad = Infinity;
    const n = backends.length;
    const start = this.next++ % n;
    for (let i = 0; i < n; i += 1) {
      const candidate = backends[(start + i) % n]!;
      if (!isUp(candidate.address)) continue;
      const load = (this.inFlight.get(candidate.address) ?? 0) + (candidate === avoid ? 1e9 : 0);
      if (load < bestLoad) {
        best = candidate;
        bestLoad = load;
      }
    }
    return best;
  }
}
