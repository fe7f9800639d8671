// Agent host names -> IP addresses, as marathon-lb resolves them (a task whose host does not resolve
// is skipped). Cached with a TTL and re-resolved in the background; routing stays pure: the table
// builder is handed `addresses()` (a new Map only when an answer changed, so it can cache by identity).
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** host -> IP; null: the host did not resolve. A host absent from the map has no answer yet. */
export type HostAddresses = ReadonlyMap<string, string | null>;

export type Lookup = (host: string) => Promise<string>;

export interface HostResolverOptions {
  ttlMs: number;
  /** Called when an answer changed (the routing table must be rebuilt). */
  onChange: () => void;
  onError?: (host: string, error: unknown) => void;
  lookup?: Lookup;
  now?: () => number;
}

const systemLookup: Lookup = async (host) => (await dnsLookup(host, { family: 0 })).address;

export class HostResolver {
  private answers = new Map<string, string | null>();
  private readonly resolvedAt = new Map<string, number>();
  private readonly pending = new Set<string>();
  private readonly lookup: Lookup;
  private readonly now: () => number;

  constructor(private readonly options: HostResolverOptions) {
    this.lookup = options.lookup ?? systemLookup;
    this.now = options.now ?? Date.now;
  }

  /**
   * The answers known now for these hosts; starts a lookup for each one unknown or older than the
   * TTL. An IP needs no answer (routing uses it as it is), so it is never added: each new entry
   * copies the map, which for 10,000 agents named by IP cost more than the rest of an event.
   */
  addresses(hosts: Iterable<string>): HostAddresses {
    for (const host of hosts) {
      if (isIP(host)) continue;
      const at = this.resolvedAt.get(host);
      if ((at === undefined || this.now() - at >= this.options.ttlMs) && !this.pending.has(host)) void this.resolve(host);
    }
    return this.answers;
  }

  private async resolve(host: string): Promise<void> {
    this.pending.add(host);
    let answer: string | null;
    try {
      answer = await this.lookup(host);
    } catch (error) {
      this.options.onError?.(host, error);
      answer = null;
    }
    this.pending.delete(host);
    this.resolvedAt.set(host, this.now());
    if (this.answers.get(host) !== answer || !this.answers.has(host)) {
      this.set(host, answer);
      this.options.onChange();
    }
  }

  private set(host: string, answer: string | null): void {
    // Copy on write: the builder recognises an unchanged map by identity.
    this.answers = new Map(this.answers).set(host, answer);
  }
}
