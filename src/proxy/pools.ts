// One undici Pool (keep-alive connections) per backend address. A backend that leaves the table
// is retired: its pool takes no new requests, finishes what it has, and is destroyed after the
// drain timeout.
import { Pool } from 'undici';

export interface PoolSettings {
  connectTimeoutMs: number;
  serverTimeoutMs: number;
  drainTimeoutMs: number;
}

export class BackendPools {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly settings: PoolSettings) {}

  get(address: string, host: string, port: number): Pool {
    let pool = this.pools.get(address);
    if (!pool) {
      const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
      pool = new Pool(origin, {
        pipelining: 1,
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: 60_000,
        connect: { timeout: this.settings.connectTimeoutMs },
        headersTimeout: this.settings.serverTimeoutMs,
        bodyTimeout: this.settings.serverTimeoutMs,
      });
      this.pools.set(address, pool);
    }
    return pool;
  }

  /** Resolves when the retired pool has finished (or been cut off at the drain timeout); null when there was none. */
  retire(address: string): Promise<void> | null {
    const pool = this.pools.get(address);
    if (!pool) return null;
    this.pools.delete(address);
    const timer = setTimeout(() => void pool.destroy().catch(() => {}), this.settings.drainTimeoutMs);
    timer.unref();
    return pool.close().then(() => clearTimeout(timer), () => clearTimeout(timer));
  }

  addresses(): IterableIterator<string> {
    return this.pools.keys();
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.destroy().catch(() => {})));
    this.pools.clear();
  }
}
