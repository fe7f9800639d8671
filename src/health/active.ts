// Active health checks run by Turbine, derived from each app's Marathon healthChecks: HTTP(S) GET
// of the path (2xx-3xx is up) or a TCP connect, every intervalSeconds, each backend at its own
// offset in the interval so checks are spread out. After `fall` consecutive failures the
// backend is marked down in the overlay; one success brings it back.
// Marathon's gracePeriodSeconds applies as Marathon applies it: failures of a task that started
// less than that long ago and has not passed yet are ignored, so a slow starter is not ejected
// while it boots. It keeps the traffic it had (as any backend before its first verdict): passive
// ejection still takes it out if requests fail, and --health-check routes only tasks Marathon
// has seen healthy, for those who want no traffic before a first pass.
import { connect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { ServiceChange } from '../routing/changes.js';
import type { ActiveCheck, Backend, Service } from '../routing/table.js';
import { hash } from '../common/hash.js';

/** Where check results go: the data plane, which keeps and logs backend state. */
export interface ActiveCheckSink {
  setActive(address: string, up: boolean): void;
}

interface Target {
  key: string;
  backend: Backend;
  check: ActiveCheck;
  service: string;
  timer: NodeJS.Timeout;
  failures: number;
  /** A check passed since the task started: its grace period is over. */
  passed: boolean;
  /** Services whose backends this target checks (one host:port can serve several). */
  refs: number;
}

export function probe(backend: Backend, check: ActiveCheck): Promise<boolean> {
  return new Promise((resolve) => {
    if (check.protocol === 'tcp') {
      const socket = connect({ host: backend.host, port: backend.checkPort });
      socket.setTimeout(check.timeoutMs, () => { socket.destroy(); resolve(false); });
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
      return;
    }
    const request = check.protocol === 'https' ? httpsRequest : httpRequest;
    const req = request({
      host: backend.host, port: backend.checkPort, path: check.path, method: 'GET', agent: false,
      timeout: check.timeoutMs, rejectUnauthorized: false, headers: { 'user-agent': 'turbine-health-check', connection: 'close' },
    }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

export class ActiveHealthChecker {
  private readonly targets = new Map<string, Target>();
  /** The targets each service asked for, so a table that changed one app touches one app. */
  private readonly byService = new Map<string, string[]>();

  constructor(private readonly health: ActiveCheckSink) {}

  /** Starts checks for new (backend, check) pairs and stops those no service needs any more. */
  update(changes: readonly ServiceChange[]): void {
    for (const [before, after] of changes) {
      const id = (after ?? before)!.id;
      const prev = this.byService.get(id);
      // Acquire before release: a pair the service keeps is never stopped and restarted.
      if (after) this.byService.set(id, this.acquire(after));
      else this.byService.delete(id);
      if (prev) this.release(prev);
    }
  }

  private acquire(service: Service): string[] {
    if (!service.healthCheck) return [];
    const check = JSON.stringify(service.healthCheck);
    return service.backends.map((backend) => {
      const key = `${backend.address}|${backend.checkPort}|${check}`;
      const existing = this.targets.get(key);
      if (existing) {
        existing.refs += 1;
        return key;
      }
      const target: Target = { key, backend, check: service.healthCheck!, service: service.id, failures: 0, passed: false, refs: 1,
        timer: setTimeout(() => void this.run(target), hash(key) % service.healthCheck!.intervalMs) };
      target.timer.unref();
      this.targets.set(key, target);
      return key;
    });
  }

  private release(keys: readonly string[]): void {
    for (const key of keys) {
      const target = this.targets.get(key);
      if (!target || --target.refs > 0) continue;
      clearTimeout(target.timer);
      this.targets.delete(key);
      this.health.setActive(target.backend.address, true);
    }
  }

  private async run(target: Target): Promise<void> {
    const up = await probe(target.backend, target.check);
    if (this.targets.get(target.key) !== target) return;
    if (up) {
      target.failures = 0;
      target.passed = true;
      this.health.setActive(target.backend.address, true);
    } else if (!target.passed && this.inGracePeriod(target)) {
      // Ignored, not counted: the task may still be starting.
    } else {
      target.failures += 1;
      if (target.failures === target.check.fall) this.health.setActive(target.backend.address, false);
    }
    target.timer = setTimeout(() => void this.run(target), target.check.intervalMs);
    target.timer.unref();
  }

  private inGracePeriod({ backend, check }: Target): boolean {
    return backend.startedAt !== null && Date.now() - backend.startedAt < check.gracePeriodMs;
  }

  stop(): void {
    for (const t of this.targets.values()) clearTimeout(t.timer);
    this.targets.clear();
  }
}
