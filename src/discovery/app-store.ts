// AppStore: the apps and tasks as Marathon last told us. Full snapshots replace it; task and health
// events update it incrementally. Apps are immutable values: a change copies the one app it
// touches, so unchanged apps keep their identity and routing rebuilds only what changed.
import {
  TERMINAL_STATES, awaitsReadiness, instanceIdOfTask, type MarathonApp, type MarathonEvent, type MarathonTask,
} from '../marathon/decode.js';

type TaskEvent = Extract<MarathonEvent, { type: 'status_update_event' }>;
type HealthEvent = Extract<MarathonEvent, { type: 'health_status_changed_event' }>;

/** `unknown-task`: a health event that names no task of its app (one not seen yet, or an id this store maps otherwise): the app is worth a refetch. */
/** `refetch`: the event cannot be applied alone; the app's state is to be fetched. */
export type ApplyResult = 'changed' | 'unchanged' | 'stale' | 'unknown-app' | 'unknown-task' | 'refetch';

/** How long a task that reached a terminal state is remembered, to refuse stale events for it. */
const TOMBSTONE_MS = 10 * 60 * 1000;
const TOMBSTONE_MAX = 100_000;

export class AppStore {
  private apps = new Map<string, MarathonApp>();
  private list: readonly MarathonApp[] | null = [];
  /** Last health result per task, carried over when Marathon omits the results (marathon-lb's cache). */
  private readonly health = new Map<string, boolean>();
  private readonly tombstones = new Map<string, number>();
  /** Ids of apps added, replaced or removed since the last takeChanges(): what the table builder rebuilds. */
  private changed = new Set<string>();
  /** Apps with a task waiting on its readiness check: kept here so no one walks every app to find them. */
  private readonly awaiting = new Set<string>();

  constructor(private readonly now: () => number = Date.now) {}

  snapshot(): readonly MarathonApp[] {
    this.list ??= [...this.apps.values()];
    return this.list;
  }

  get(appId: string): MarathonApp | undefined {
    return this.apps.get(appId);
  }

  get size(): number {
    return this.apps.size;
  }

  /** The ids of the apps with a task waiting on its readiness check. */
  awaitingReadiness(): ReadonlySet<string> {
    return this.awaiting;
  }

  private noteReadiness(app: MarathonApp): void {
    if (app.tasks.some(awaitsReadiness)) this.awaiting.add(app.id);
    else this.awaiting.delete(app.id);
  }

  /** The ids of the apps that changed since the last call. */
  takeChanges(): ReadonlySet<string> {
    const changed = this.changed;
    this.changed = new Set();
    return changed;
  }

  /** Replaces everything with a full snapshot from Marathon. */
  /** `kept`: apps Marathon listed but whose entries could not be read: their last good version stays. */
  replaceAll(apps: readonly MarathonApp[], kept: ReadonlySet<string> = new Set()): void {
    const next = new Map<string, MarathonApp>();
    const liveTasks = new Set<string>();
    for (const id of kept) {
      const prev = this.apps.get(id);
      if (prev === undefined) continue;
      next.set(id, prev);
      for (const t of prev.tasks) liveTasks.add(t.id);
    }
    for (const app of apps) {
      const withHealth = this.withRememberedHealth(app);
      const prev = this.apps.get(app.id);
      if (prev && sameApp(prev, withHealth)) next.set(app.id, prev);
      else {
        next.set(app.id, withHealth);
        this.changed.add(app.id);
      }
      for (const t of app.tasks) liveTasks.add(t.id);
    }
    for (const taskId of this.health.keys()) if (!liveTasks.has(taskId)) this.health.delete(taskId);
    for (const id of this.apps.keys()) if (!next.has(id)) this.changed.add(id);
    this.apps = next;
    this.awaiting.clear();
    for (const app of next.values()) this.noteReadiness(app);
    this.list = null;
  }

  /** Replaces or removes one app after a per-app refetch. */
  upsertApp(app: MarathonApp): boolean {
    const withHealth = this.withRememberedHealth(app);
    const prev = this.apps.get(app.id);
    if (prev && sameApp(prev, withHealth)) return false;
    this.apps.set(app.id, withHealth);
    this.noteReadiness(withHealth);
    this.changed.add(app.id);
    this.list = null;
    return true;
  }

  removeApp(appId: string): boolean {
    const app = this.apps.get(appId);
    if (!app) return false;
    for (const t of app.tasks) this.health.delete(t.id);
    this.apps.delete(appId);
    this.awaiting.delete(appId);
    this.changed.add(appId);
    this.list = null;
    return true;
  }

  applyTaskStatus(event: TaskEvent): ApplyResult {
    const app = this.apps.get(event.appId);
    if (!app) return 'unknown-app';
    if (this.tombstones.has(event.taskId)) return 'stale';
    const index = app.tasks.findIndex((t) => t.id === event.taskId);
    const prev = index >= 0 ? app.tasks[index]! : null;
    const at = event.at ?? this.now();
    // A terminal state is final whatever its timestamp says (Mesos never revives a task; the
    // clocks of the Marathon that listed the task and of the one sending this may disagree).
    if (prev && at < prev.stateAt && !TERMINAL_STATES.has(event.state)) return 'stale';

    if (TERMINAL_STATES.has(event.state)) {
      this.bury(event.taskId, at);
      if (!prev) return 'unchanged';
      this.health.delete(event.taskId);
      this.replaceTasks(app, app.tasks.filter((_, i) => i !== index));
      return 'changed';
    }
    const task: MarathonTask = {
      id: event.taskId,
      appId: app.id,
      host: event.host || prev?.host || '',
      ports: event.ports.length > 0 ? event.ports : prev?.ports ?? [],
      ipAddresses: event.ipAddresses.length > 0 ? event.ipAddresses : prev?.ipAddresses ?? [],
      state: event.state,
      healthAlive: prev?.healthAlive ?? this.health.get(event.taskId) ?? null,
      stateAt: at,
      startedAt: prev?.startedAt ?? (event.state === 'TASK_RUNNING' ? at : null),
      // No event carries readiness: a new task of an app with readiness checks waits for a fetch.
      readiness: prev?.readiness ?? (app.hasReadinessChecks ? 'no-result' : 'ready'),
    };
    if (prev && sameTask(prev, task)) return 'unchanged';
    const tasks = [...app.tasks];
    if (index >= 0) tasks[index] = task;
    else tasks.push(task);
    this.replaceTasks(app, tasks);
    return 'changed';
  }

  applyHealth(event: HealthEvent): ApplyResult {
    const app = this.apps.get(event.appId);
    if (!app) return 'unknown-app';
    // A task is alive while any of its checks is (marathon-lb's rule, healthFromResults). Marathon
    // sends an event per check without naming it, so with several checks one failing says nothing
    // of the others: the app's results are fetched instead (marathon-lb, too, fetches on events).
    if (!event.alive && app.healthChecks.length > 1) return 'refetch';
    const matches = (t: MarathonTask) => (event.taskId !== null ? t.id === event.taskId : instanceIdOfTask(t.id) === event.instanceId);
    let changed = false;
    let matched = false;
    const tasks = app.tasks.map((t) => {
      if (!matches(t)) return t;
      matched = true;
      this.health.set(t.id, event.alive);
      if (t.healthAlive === event.alive) return t;
      changed = true;
      return { ...t, healthAlive: event.alive };
    });
    if (!changed) return matched ? 'unchanged' : 'unknown-task';
    this.replaceTasks(app, tasks);
    return 'changed';
  }

  private replaceTasks(app: MarathonApp, tasks: MarathonTask[]): void {
    const next = { ...app, tasks };
    this.apps.set(app.id, next);
    this.noteReadiness(next);
    this.changed.add(app.id);
    this.list = null;
  }

  /** Carries health over from earlier results and drops tasks already seen terminal (Mesos never revives one). */
  private withRememberedHealth(app: MarathonApp): MarathonApp {
    let changed = false;
    const alive = app.tasks.filter((t) => !this.tombstones.has(t.id));
    if (alive.length !== app.tasks.length) changed = true;
    const tasks = alive.map((t) => {
      if (t.healthAlive !== null) {
        this.health.set(t.id, t.healthAlive);
        return t;
      }
      const remembered = this.health.get(t.id);
      if (remembered === undefined) return t;
      changed = true;
      return { ...t, healthAlive: remembered };
    });
    return changed ? { ...app, tasks } : app;
  }

  private bury(taskId: string, at: number): void {
    this.tombstones.set(taskId, at);
    if (this.tombstones.size <= TOMBSTONE_MAX) return;
    const cutoff = this.now() - TOMBSTONE_MS;
    for (const [id, when] of this.tombstones) {
      if (when < cutoff || this.tombstones.size > TOMBSTONE_MAX) this.tombstones.delete(id);
      else break;
    }
  }
}

function sameTask(a: MarathonTask, b: MarathonTask): boolean {
  return a.state === b.state && a.host === b.host && a.healthAlive === b.healthAlive && a.readiness === b.readiness && a.startedAt === b.startedAt
    && a.ports.join(',') === b.ports.join(',') && a.ipAddresses.join(',') === b.ipAddresses.join(',');
}

/** Equal for routing purposes: a resync that brings nothing new keeps the old object (and the cache). */
function sameApp(a: MarathonApp, b: MarathonApp): boolean {
  if (a.tasks.length !== b.tasks.length || a.version !== b.version) return false;
  if (JSON.stringify(a.labels) !== JSON.stringify(b.labels) || JSON.stringify(a.ports) !== JSON.stringify(b.ports)
    || JSON.stringify(a.healthChecks) !== JSON.stringify(b.healthChecks) || a.ipPerTask !== b.ipPerTask || a.hasReadinessChecks !== b.hasReadinessChecks) return false;
  return a.tasks.every((t, i) => t.id === b.tasks[i]!.id && sameTask(t, b.tasks[i]!));
}
