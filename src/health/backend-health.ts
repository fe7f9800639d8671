// The overlay of backend state that the balancer consults, kept apart from membership (Envoy's
// model): a backend is in the table because Marathon says it runs; it gets new traffic only while
// no reason takes it out. Reasons here: a failing active check, and passive (outlier) ejection.
export type DownReason = 'active-check' | 'ejected';

interface State {
  activeDown: boolean;
  consecutiveFailures: number;
  ejectedUntil: number;
  ejections: number;
}

export interface BackendHealthOptions {
  ejectAfterFailures: number;
  ejectMs: number;
  now?: () => number;
  onChange?: (address: string, up: boolean, reasons: DownReason[]) => void;
}

export class BackendHealth {
  private readonly states = new Map<string, State>();
  /** Backends that get traffic whatever their state: the primary's ejection cap and panic decision. */
  private routable = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly options: BackendHealthOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Hot path: one Map lookup; most backends have no entry at all. */
  readonly isUp = (address: string): boolean => {
    const s = this.states.get(address);
    if (s === undefined || this.routable.has(address)) return true;
    if (s.activeDown) return false;
    return s.ejectedUntil === 0 || s.ejectedUntil <= this.now();
  };

  reasons(address: string): DownReason[] {
    const s = this.states.get(address);
    const out: DownReason[] = [];
    if (s?.activeDown) out.push('active-check');
    if (s && s.ejectedUntil > this.now()) out.push('ejected');
    return out;
  }

  /** Replaces the set of backends routed to despite their reasons (see health/ejection-limits.ts). */
  setRoutable(addresses: readonly string[]): void {
    this.routable = new Set(addresses);
  }

  setActive(address: string, up: boolean): void {
    const s = this.state(address);
    if (s.activeDown === !up) return;
    s.activeDown = !up;
    this.emit(address);
  }

  /** A connect error, reset or timeout. After N in a row the backend is ejected for a while. */
  reportFailure(address: string): void {
    const s = this.state(address);
    s.consecutiveFailures += 1;
    if (s.consecutiveFailures < this.options.ejectAfterFailures || s.ejectedUntil > this.now()) return;
    s.ejections += 1;
    // Backoff grows with repeated ejections (Envoy's outlier detection), capped at 10 periods, and at
    // the longest timer Node keeps (a longer one would fire at once and the ejection end unheard).
    s.ejectedUntil = this.now() + Math.min(this.options.ejectMs * Math.min(s.ejections, 10), 2 ** 31 - 1);
    s.consecutiveFailures = 0;
    this.emit(address);
    const timer = setTimeout(() => this.emit(address), s.ejectedUntil - this.now() + 1);
    timer.unref();
  }

  reportSuccess(address: string): void {
    const s = this.states.get(address);
    if (s === undefined) return;
    s.consecutiveFailures = 0;
    if (s.ejectedUntil !== 0 && s.ejectedUntil <= this.now()) {
      s.ejectedUntil = 0;
      s.ejections = 0;
    }
    if (!s.activeDown && s.ejectedUntil === 0) this.states.delete(address);
  }

  private state(address: string): State {
    let s = this.states.get(address);
    if (!s) {
      s = { activeDown: false, consecutiveFailures: 0, ejectedUntil: 0, ejections: 0 };
      this.states.set(address, s);
    }
    return s;
  }

  private emit(address: string): void {
    this.options.onChange?.(address, this.isUp(address), this.reasons(address));
  }
}
