// Backends that left the routing table while work was still on them: a pool finishing its
// requests, or open TCP/WebSocket streams. They get no new traffic; they are shown as draining
// until the last piece of work ends (or the drain timeout closes it).
export interface DrainingBackend {
  service: string;
  backend: string;
}

export class DrainingBackends {
  private readonly entries = new Map<string, { service: string; units: number }>();

  /** One piece of work still on a retired backend; call the result when it ends. */
  hold(address: string, service: string): () => void {
    let entry = this.entries.get(address);
    if (!entry) {
      entry = { service, units: 0 };
      this.entries.set(address, entry);
    }
    const held = entry;
    held.units += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      held.units -= 1;
      if (held.units === 0 && this.entries.get(address) === held) this.entries.delete(address);
    };
  }

  /** The address is routed to again: not draining, whatever it still has (a later release is a no-op). */
  forget(address: string): void {
    this.entries.delete(address);
  }

  list(): DrainingBackend[] {
    return [...this.entries].map(([backend, e]) => ({ service: e.service, backend }));
  }
}
