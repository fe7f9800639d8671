// --workers N: the data plane in N worker processes (node:cluster, each accepting on the shared
// listening sockets). The primary keeps the control plane; this class is its DataPlane: it sends
// each table and active-check result to every worker, merges their reports, and replaces a worker
// that dies while the others keep serving.
import cluster, { type Worker } from 'node:cluster';
import { join } from 'node:path';
import type { LevelWithSilent } from 'pino';
import type { Logger } from '../observability/logger.js';
import { countersOnly, emptyServiceCounters, emptySnapshot, mergeSnapshots, withinTable, type StatsSnapshot } from '../observability/stats.js';
import type { TableChange } from '../routing/changes.js';
import type { RoutingTable } from '../routing/table.js';
import { logBackendChange } from '../proxy/backend-log.js';
import type { DataPlane, DataPlaneSetup, ListenFailure, ListenerStatus } from '../proxy/data-plane.js';
import type { DrainingBackend } from '../proxy/draining.js';
import { deltaMessage, withTrafficDelta, type FromWorker, type ToWorker, type WorkerProcessReport, type WorkerReport } from './worker-messages.js';

interface Member {
  worker: Worker;
  /** Its place among the workers (a replacement takes the place of the one that died): it decides the worker's --maxconn share. */
  slot: number;
  ready: boolean;
  report: WorkerReport | null;
  /** When it was forked (performance.now()): one that dies young makes its slot's next replacement wait. */
  forkedAt: number;
}

interface PendingApply {
  waiting: Set<number>;
  failures: ListenFailure[];
  resolve(failures: ListenFailure[]): void;
}

/** A worker that lived this long died of something else than what killed the ones before it: its replacement starts at once. */
const STABLE_MS = 60_000;
const MAX_REPLACEMENT_DELAY_MS = 30_000;

export class ProxyWorkers implements DataPlane {
  private readonly members = new Map<number, Member>();
  private readonly activeDown = new Set<string>();
  private readonly failing = new Set<string>();
  private routable: readonly string[] = [];
  private readonly pending = new Map<number, PendingApply>();
  /** Counters of workers that died, and of backends a live worker stopped counting, so totals never go backwards (for what the table or a live worker still holds). */
  private retired: StatsSnapshot = emptySnapshot();
  private table: RoutingTable | null = null;
  private stopping = false;
  /** Workers started in place of ones that died (turbine_worker_restarts_total). */
  restarts = 0;
  /** Per slot, how many of its workers in a row died young. */
  private readonly strikes = new Map<number, number>();
  /** Replacements waiting for their delay, cancelled by stop(). */
  private readonly pendingForks = new Set<NodeJS.Timeout>();

  constructor(
    private readonly setup: DataPlaneSetup,
    private readonly count: number,
    private readonly logLevel: LevelWithSilent,
    private readonly log: Logger,
  ) {
    // Every worker accepts on the shared socket itself: no round trip through the primary.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: join(import.meta.dirname, 'worker-main.js'), args: [], silent: false });
  }

  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.count }, () => this.fork()));
  }

  /**
   * --maxconn and --maxconn-per-service are totals: each worker admits its share, and the shares
   * add up to them exactly (the remainder goes to the first slots; options refuse a limit below the
   * number of workers). The kernel picks the worker of a connection, so one may be refused while
   * another worker has room; the total never goes over.
   */
  private settingsFor(slot: number): DataPlaneSetup['settings'] {
    const share = (total: number) => Math.floor(total / this.count) + (slot < total % this.count ? 1 : 0);
    const { settings } = this.setup;
    return { ...settings, maxconn: share(settings.maxconn), maxconnPerService: share(settings.maxconnPerService) };
  }

  private fork(): Promise<void> {
    const worker = cluster.fork();
    const taken = new Set([...this.members.values()].map((m) => m.slot));
    let slot = 0;
    while (taken.has(slot)) slot += 1;
    const member: Member = { worker, slot, ready: false, report: null, forkedAt: performance.now() };
    // A send to a worker that just died fails with EPIPE; its exit handler deals with the death.
    worker.on('error', (err: Error) => this.log.debug({ component: 'workers', pid: worker.process.pid, err: err.message }, 'worker channel error'));
    this.members.set(worker.id, member);
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'hello':
            this.send(member, { type: 'init', setup: { ...this.setup, settings: this.settingsFor(member.slot) }, logLevel: this.logLevel });
            return;
          case 'ready':
            member.ready = true;
            if (this.table) this.send(member, { type: 'table', table: this.table });
            for (const address of this.activeDown) this.send(member, { type: 'active', address, up: false });
            if (this.routable.length > 0) this.send(member, { type: 'routable', addresses: this.routable });
            resolve();
            return;
          case 'failed':
            reject(new Error(message.message));
            return;
          case 'applied':
            this.acknowledge(worker.id, message.generation, message.failures);
            return;
          case 'report': {
            const { type: _type, forgotten, ...report } = message;
            if (member.report) this.keepDropped(member.report.traffic, report.traffic);
            member.report = { ...report, traffic: withTrafficDelta(member.report?.traffic, report.traffic, forgotten) };
            this.forgetRecoveredListeners();
          }
        }
      });
      worker.once('exit', (code, signal) => {
        this.members.delete(worker.id);
        if (member.report) this.retired = mergeSnapshots([this.retired, countersOnly(member.report.traffic)]);
        for (const generation of this.pending.keys()) this.acknowledge(worker.id, generation, []);
        if (!member.ready) reject(new Error(`worker ${worker.process.pid} exited (${signal ?? code}) before it was ready`));
        if (this.stopping) return;
        const delayMs = this.replacementDelay(member);
        this.log.error({ component: 'workers', pid: worker.process.pid, code, signal, delayMs }, 'proxy worker died; starting a new one');
        const replace = () => {
          if (this.stopping) return;
          this.restarts += 1;
          // One that fails to start exits too, and its exit starts the next attempt (later each time).
          this.fork().catch((err: Error) => this.log.error({ component: 'workers', err: err.message }, 'replacement worker failed to start'));
        };
        if (delayMs === 0) replace();
        else {
          const timer = setTimeout(() => {
            this.pendingForks.delete(timer);
            replace();
          }, delayMs);
          this.pendingForks.add(timer);
        }
      });
    });
    return ready;
  }

  /**
   * How long to wait before replacing a worker that died: at once, unless it died young
   * (within STABLE_MS) after the one before it in its slot did too; then 0.5 s, 1 s, ... up to MAX_REPLACEMENT_DELAY_MS,
   * and it stays there while they keep dying young (a worker that dies at start, or on every table,
   * is not forked in a tight loop). Per slot: workers that die together come back together.
   */
  private replacementDelay(dead: Member): number {
    const strikes = performance.now() - dead.forkedAt >= STABLE_MS ? 0 : (this.strikes.get(dead.slot) ?? 0) + 1;
    this.strikes.set(dead.slot, strikes);
    return strikes <= 1 ? 0 : Math.min(MAX_REPLACEMENT_DELAY_MS, 250 * 2 ** (strikes - 1));
  }

  /**
   * A worker stopped counting a backend that left (its retention is over): what it counted joins
   * the retired counts, which stay while another live worker still counts it. Each worker drops it
   * on its own sweep, at its own time; summed as reported, the counter went down until the last
   * one had dropped it, which Prometheus reads as a reset.
   */
  private keepDropped(previous: StatsSnapshot, delta: StatsSnapshot): void {
    const dropped = emptySnapshot();
    for (const [id, now] of Object.entries(delta.services)) {
      const before = previous.services[id];
      if (before === undefined) continue;
      for (const [backend, counters] of Object.entries(before.backends)) {
        if (now.backends[backend] !== undefined) continue;
        (dropped.services[id] ??= emptyServiceCounters()).backends[backend] = counters;
      }
    }
    if (Object.keys(dropped.services).length > 0) this.retired = mergeSnapshots([this.retired, dropped]);
  }

  private send(member: Member, message: ToWorker): void {
    if (member.worker.isConnected()) member.worker.send(message);
  }

  apply(change: TableChange): Promise<ListenFailure[]> {
    const { table } = change;
    this.table = table;
    const ready = [...this.members.values()].filter((m) => m.ready);
    if (ready.length === 0) return Promise.resolve([]);
    const message = deltaMessage(change);
    return new Promise((resolve) => {
      this.pending.set(table.generation, { waiting: new Set(ready.map((m) => m.worker.id)), failures: [], resolve });
      for (const member of ready) this.send(member, message);
    });
  }

  private acknowledge(workerId: number, generation: number, failures: ListenFailure[]): void {
    const pending = this.pending.get(generation);
    if (!pending || !pending.waiting.delete(workerId)) return;
    pending.failures.push(...failures);
    if (pending.waiting.size > 0) return;
    this.pending.delete(generation);
    // Every worker reports the same port once; the primary counts it once.
    const fresh = new Map<string, ListenFailure>();
    for (const f of pending.failures) if (!this.failing.has(f.key)) fresh.set(f.key, f);
    for (const key of fresh.keys()) this.failing.add(key);
    pending.resolve([...fresh.values()]);
  }

  setActive(address: string, up: boolean): void {
    if (up === !this.activeDown.has(address)) return;
    if (up) this.activeDown.delete(address);
    else this.activeDown.add(address);
    logBackendChange(this.log, this.table, address, up, this.downReasons(address));
    for (const member of this.members.values()) if (member.ready) this.send(member, { type: 'active', address, up });
  }

  setRoutable(addresses: readonly string[]): void {
    this.routable = addresses;
    for (const member of this.members.values()) if (member.ready) this.send(member, { type: 'routable', addresses });
  }

  downReasons(address: string): string[] {
    const reasons = new Set<string>(this.activeDown.has(address) ? ['active-check'] : []);
    for (const m of this.members.values()) for (const r of m.report?.down[address] ?? []) reasons.add(r);
    return [...reasons];
  }

  private reports(): WorkerReport[] {
    return [...this.members.values()].flatMap((m) => (m.report ? [m.report] : []));
  }

  listenerStatus(): ListenerStatus[] {
    const byKey = new Map<string, ListenerStatus>();
    for (const r of this.reports()) for (const l of r.listeners) if (!byKey.has(l.key) || l.error) byKey.set(l.key, l);
    return [...byKey.values()];
  }

  /** A port no worker reports failing any more may fail again later, and then counts again. */
  private forgetRecoveredListeners(): void {
    const failing = new Set(this.listenerStatus().filter((l) => l.error).map((l) => l.key));
    for (const key of this.failing) if (!failing.has(key)) this.failing.delete(key);
  }

  drainingBackends(): DrainingBackend[] {
    const byKey = new Map<string, DrainingBackend>();
    for (const r of this.reports()) for (const d of r.draining) byKey.set(`${d.service}|${d.backend}`, d);
    return [...byKey.values()];
  }

  traffic(): StatsSnapshot {
    const live = this.reports().map((r) => r.traffic);
    // What dead workers counted goes with the series of what left, when the live workers' own go
    // (a backend that left stays for --metrics-retention): dropped sooner, a counter a scrape still
    // sees would go down, which Prometheus reads as a reset.
    if (this.table !== null) this.retired = withinTable(this.retired, this.table, live);
    return mergeSnapshots([this.retired, ...live]);
  }

  /** Each live worker's CPU, memory and event-loop lag, as it last reported them. */
  processes(): WorkerProcessReport[] {
    return this.reports().map((r) => r.process);
  }

  /** Process ids of the live workers (marathon-lb's /_haproxy_getpids lists HAProxy's). */
  pids(): number[] {
    return [...this.members.values()].flatMap((m) => (m.worker.process.pid ? [m.worker.process.pid] : []));
  }

  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    for (const timer of this.pendingForks) clearTimeout(timer);
    this.pendingForks.clear();
    await Promise.all([...this.members.values()].map((member) => new Promise<void>((resolve) => {
      const timer = setTimeout(() => member.worker.process.kill('SIGKILL'), drainMs + 5000);
      member.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.send(member, { type: 'stop', drainMs });
    })));
  }
}
