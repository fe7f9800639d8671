// A fake Marathon that speaks the real wire format: /v2/apps?embed=apps.tasks and /v2/apps/{id}
// shapes, /v2/events as SSE framed like Marathon (`event: TYPE`, `data: JSON`, blank line, starting
// with event_stream_attached), event payloads as in Marathon's docs. A control API (methods, and
// HTTP under /_control/) scales apps, kills tasks, flips health, runs deployments with readiness
// check results, drops, stalls or breaks the stream.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeTask {
  id: string;
  appId: string;
  host: string;
  ports: number[];
  ipAddresses: { ipAddress: string; protocol: 'IPv4' }[];
  state: string;
  alive: boolean | null;
  /** Per health check, once one was set on its own (setHealth with a check): Marathon lists a result for each. */
  checks?: boolean[];
  stagedAt: string;
  startedAt: string;
  version: string;
  slaveId: string;
}

export type AppDefinition = Record<string, unknown> & { id: string };

/** Starts a real process or server for a task of the app; returns where it listens. */
export type Launcher = (appId: string) => Promise<{ host: string; ports: number[]; stop?: () => Promise<void> | void }>;

export interface FakeMarathonOptions {
  launcher?: Launcher;
  /** When set, every request must carry this Authorization header (401 otherwise). */
  authorization?: string;
  /** How long a killed task's backend keeps running after TASK_KILLED (Mesos gives a grace period). */
  stopDelayMs?: number;
  /** Serve over HTTPS with this certificate and key (PEM), as a DC/OS Marathon does. */
  tls?: { cert: string; key: string };
  /**
   * What a kill reports. 'killing-then-killed' (the default): a Marathon that registers with the
   * TASK_KILLING_STATE capability (newer versions) gets TASK_KILLING when the kill starts, then
   * TASK_KILLED. 'killed-only': older Marathon, or an executor that never reports KILLING: TASK_KILLED alone.
   */
  killEvents?: KillEvents;
}

export type KillEvents = 'killing-then-killed' | 'killed-only';

const iso = () => new Date().toISOString();

export function taskIdFor(appId: string): string {
  return `${appId.replace(/^\//, '').replace(/\//g, '_')}.instance-${randomUUID()}._app.1`;
}

export class FakeMarathon {
  private readonly server: Server;
  private readonly apps = new Map<string, AppDefinition>();
  private readonly tasks = new Map<string, FakeTask[]>();
  private readonly stoppers = new Map<string, () => Promise<void> | void>();
  private readonly streams = new Set<ServerResponse>();
  /** The deployment running per app, as Marathon lists it in the app's `deployments`. */
  private readonly deployments = new Map<string, string>();
  /** Readiness check results by task id, served while the task's app deploys. */
  private readonly readiness = new Map<string, boolean>();
  private lastVersion = 0;
  private readonly sockets = new Set<Socket>();
  private stalled = false;
  /** App answers leave out `tasks`, as a Marathon (or a proxy) that drops the embed parameter does. */
  private withoutTasks = false;
  private failures: { status: number; remaining: number; body?: string } | null = null;
  private restDelayMs = 0;
  private redirectEvents: string | null = null;
  private eventsStatus: number | null = null;
  private dropAfter: { every: number; count: number } | null = null;
  private flapping = false;
  port = 0;
  /** App JSON served verbatim in /v2/apps after the managed apps (malformed-input tests). */
  readonly rawApps: unknown[] = [];
  /** Counts of REST and stream requests, for tests that check resync behaviour. */
  readonly requests = { apps: 0, app: 0, events: 0 };

  constructor(private readonly options: FakeMarathonOptions = {}) {
    const handler = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    this.server = options.tls ? createHttpsServer(options.tls, handler) : createServer(handler);
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`fake Marathon cannot listen on ${host}:${port}: ${err.code ?? err.message}`)));
      this.server.listen(port, host, resolve);
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.stoppers.values()].map((stop) => stop()));
  }

  // ---- control ----

  /** Adds or replaces an app; tasks given here are running from the start. `silent`: no event announces it. */
  putApp(app: AppDefinition, tasks: Partial<FakeTask>[] = [], options: { silent?: boolean } = {}): void {
    const id = app.id.startsWith('/') ? app.id : `/${app.id}`;
    const def = { ...app, id, version: this.nextVersion() };
    const existed = this.apps.has(id);
    this.apps.set(id, def);
    if (!existed) this.tasks.set(id, []);
    for (const t of tasks) this.addTask(id, t);
    if (options.silent) return;
    this.emit('api_post_event', { clientIp: '127.0.0.1', uri: `/v2/apps${id}`, appDefinition: def });
    this.emit('deployment_info', {
      plan: { id: randomUUID(), steps: [{ actions: [{ action: existed ? 'RestartApplication' : 'StartApplication', app: id }] }], version: iso() },
      currentStep: { actions: [{ action: existed ? 'RestartApplication' : 'StartApplication', app: id }] },
    });
  }

  removeApp(appId: string): void {
    this.apps.delete(appId);
    for (const t of this.tasks.get(appId) ?? []) void this.stoppers.get(t.id)?.();
    this.tasks.delete(appId);
    this.emit('app_terminated_event', { appId });
  }

  /** Adds a running task silently (as if it had been there before a resync). */
  addTask(appId: string, partial: Partial<FakeTask>): FakeTask {
    const app = this.apps.get(appId);
    if (!app) throw new Error(`no app ${appId}`);
    const task: FakeTask = {
      id: partial.id ?? taskIdFor(appId), appId, host: partial.host ?? '127.0.0.1', ports: partial.ports ?? [],
      ipAddresses: partial.ipAddresses ?? [{ ipAddress: partial.host ?? '127.0.0.1', protocol: 'IPv4' }],
      state: partial.state ?? 'TASK_RUNNING', alive: partial.alive ?? (Array.isArray(app.healthChecks) && app.healthChecks.length > 0 ? true : null),
      stagedAt: iso(), startedAt: iso(), version: String(app.version), slaveId: 'agent-1',
    };
    this.tasks.get(appId)!.push(task);
    return task;
  }

  /** A task comes up: TASK_STAGING, TASK_STARTING, TASK_RUNNING events, as Mesos reports them. */
  startTask(appId: string, where: { host: string; ports: number[] }, options: { alive?: boolean | null; stages?: boolean } = {}): FakeTask {
    const task = this.addTask(appId, { ...where, state: options.stages === false ? 'TASK_RUNNING' : 'TASK_STAGING', alive: options.alive ?? null });
    if (options.stages !== false) {
      this.statusUpdate(task, 'TASK_STAGING');
      this.statusUpdate(task, 'TASK_STARTING');
    }
    this.statusUpdate(task, 'TASK_RUNNING');
    if (options.alive !== undefined && options.alive !== null) this.setHealth(task.id, options.alive);
    return task;
  }

  /** Kills a task as this Marathon reports kills (see `killEvents`), and it leaves the app. */
  killTask(taskId: string, options: { events?: KillEvents } = {}): void {
    const task = this.findTask(taskId);
    if (!task) throw new Error(`no task ${taskId}`);
    if ((options.events ?? this.options.killEvents ?? 'killing-then-killed') === 'killing-then-killed') this.statusUpdate(task, 'TASK_KILLING');
    this.statusUpdate(task, 'TASK_KILLED');
    this.forget(task);
  }

  /**
   * A task that ends on its own: one status update, nothing before it. A terminal state
   * (TASK_FAILED, TASK_FINISHED, TASK_GONE...) takes it out of the app's task list; TASK_LOST and
   * TASK_UNREACHABLE leave it listed in that state, as Marathon does until the task is expunged.
   */
  endTask(taskId: string, state: 'TASK_FAILED' | 'TASK_FINISHED' | 'TASK_ERROR' | 'TASK_GONE' | 'TASK_LOST' | 'TASK_UNREACHABLE'): void {
    const task = this.findTask(taskId);
    if (!task) throw new Error(`no task ${taskId}`);
    this.statusUpdate(task, state);
    if (state !== 'TASK_LOST' && state !== 'TASK_UNREACHABLE') this.forget(task);
  }

  /** The task leaves the app; its process stops after the grace period. */
  private forget(task: FakeTask): void {
    const list = this.tasks.get(task.appId)!;
    list.splice(list.indexOf(task), 1);
    this.readiness.delete(task.id);
    const stop = this.stoppers.get(task.id);
    this.stoppers.delete(task.id);
    if (stop) setTimeout(() => void stop(), this.options.stopDelayMs ?? 0);
  }

  /** Sets a task's health, or one of its checks' (`check`: an index into the app's healthChecks); the event names neither, as Marathon's. */
  setHealth(taskId: string, alive: boolean, check?: number): void {
    const task = this.findTask(taskId);
    if (!task) throw new Error(`no task ${taskId}`);
    if (check === undefined) {
      task.alive = alive;
      delete task.checks;
    } else {
      const count = (this.apps.get(task.appId)?.healthChecks as unknown[] | undefined)?.length ?? 1;
      task.checks ??= Array.from({ length: count }, () => task.alive ?? true);
      task.checks[check] = alive;
    }
    this.emit('health_status_changed_event', { appId: task.appId, instanceId: task.id.replace(/\._app\.\d+$/, ''), version: task.version, alive });
  }

  /**
   * A deployment starts, as a change to the app does: a new app version (tasks started from now
   * on carry it), the app lists the deployment, and deployment_info announces it.
   */
  startDeployment(appId: string): string {
    const app = this.apps.get(appId);
    if (!app) throw new Error(`no app ${appId}`);
    const id = randomUUID();
    app.version = this.nextVersion();
    this.deployments.set(appId, id);
    const actions = [{ action: 'RestartApplication', app: appId }];
    this.emit('deployment_info', { plan: { id, steps: [{ actions }], version: app.version }, currentStep: { actions } });
    return id;
  }

  /** Marathon's readiness check result for a task of a deploying app (no event announces it: clients poll). */
  setReadiness(taskId: string, ready: boolean): void {
    if (!this.findTask(taskId)) throw new Error(`no task ${taskId}`);
    this.readiness.set(taskId, ready);
  }

  /** The deployment ends: its readiness results go with it, and deployment_success says so. */
  finishDeployment(appId: string): void {
    const id = this.deployments.get(appId);
    if (!id) throw new Error(`no deployment for ${appId}`);
    this.deployments.delete(appId);
    for (const t of this.tasks.get(appId) ?? []) this.readiness.delete(t.id);
    const actions = [{ action: 'RestartApplication', app: appId }];
    this.emit('deployment_success', { id, plan: { id, steps: [{ actions }], version: String(this.apps.get(appId)?.version) } });
  }

  /** Scales with the launcher: new tasks start real backends, removed ones are killed. */
  async scale(appId: string, instances: number): Promise<FakeTask[]> {
    const launcher = this.options.launcher;
    if (!launcher) throw new Error('scale needs a launcher');
    const list = this.tasks.get(appId);
    if (!list) throw new Error(`no app ${appId}`);
    while (list.length > instances) this.killTask(list[list.length - 1]!.id);
    const started: FakeTask[] = [];
    while (list.length < instances) {
      const where = await launcher(appId);
      const app = this.apps.get(appId)!;
      const hasChecks = Array.isArray(app.healthChecks) && app.healthChecks.length > 0;
      const task = this.startTask(appId, where, { alive: hasChecks ? true : null });
      if (where.stop) this.stoppers.set(task.id, where.stop);
      started.push(task);
    }
    return started;
  }

  tasksOf(appId: string): FakeTask[] {
    return [...(this.tasks.get(appId) ?? [])];
  }

  statusUpdate(task: FakeTask, state: string, overrides: Record<string, unknown> = {}): void {
    task.state = state;
    this.emit('status_update_event', {
      slaveId: task.slaveId, taskId: task.id, taskStatus: state, message: '', appId: task.appId, host: task.host,
      ports: task.ports, ipAddresses: task.ipAddresses, version: task.version, ...overrides,
    });
  }

  /** Sends one event to every open stream, framed as Marathon frames it. */
  emit(eventType: string, payload: Record<string, unknown>): void {
    this.writeRaw(`event: ${eventType}\ndata: ${JSON.stringify({ ...payload, eventType, timestamp: (payload.timestamp as string) ?? iso() })}\n\n`);
  }

  /** Bytes as they are, for malformed-stream tests. */
  writeRaw(text: string): void {
    if (this.stalled || this.streams.size === 0) return;
    for (const s of this.streams) s.write(text);
    if (this.dropAfter && ++this.dropAfter.count % this.dropAfter.every === 0) this.dropStreams();
  }

  /** Closes every stream after each `every` writes (null: never), as a flaky network or proxy does. */
  dropEvery(every: number | null): void {
    this.dropAfter = every ? { every, count: 0 } : null;
  }

  /** Every stream closes just after it opens (a proxy or load balancer in front of Marathon cutting it), or no longer. */
  flap(on: boolean): void {
    this.flapping = on;
  }

  dropStreams(): void {
    for (const s of this.streams) s.destroy();
    this.streams.clear();
  }

  /** A stalled stream stays open but sends nothing (no event, no byte). */
  stall(on: boolean): void {
    this.stalled = on;
  }

  /** The next `count` REST calls answer `status` (and `body`, e.g. truncated JSON). */
  failRest(status: number, count: number, body?: string): void {
    this.failures = { status, remaining: count, ...(body !== undefined ? { body } : {}) };
  }

  /** App answers (/v2/apps, /v2/apps/ID) are taken when asked for and sent `ms` later, as a slow Marathon's are: changes meanwhile are not in them. */
  delayRest(ms: number): void {
    this.restDelayMs = ms;
  }

  /** Sends a REST answer after the delay set by delayRest. */
  private answer(res: ServerResponse, status: number, body: string): void {
    const send = () => res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    if (this.restDelayMs > 0) setTimeout(send, this.restDelayMs);
    else send();
  }

  /** From now on app answers have no `tasks` field (false: as usual). */
  omitTasks(on: boolean): void {
    this.withoutTasks = on;
  }

  /** Answers /v2/events with this status (null: streams again), as an account without the events permission or a proxy that breaks SSE gets. */
  failEvents(status: number | null): void {
    this.eventsStatus = status;
  }

  /** Answers /v2/events with a redirect, as a non-leader Marathon does. */
  redirectEventsTo(url: string | null): void {
    this.redirectEvents = url;
  }

  streamCount(): number {
    return this.streams.size;
  }

  /** From now on every request must carry this Authorization header, as after a token rotation. */
  requireAuthorization(value: string): void {
    this.options.authorization = value;
  }

  private findTask(taskId: string): FakeTask | undefined {
    for (const list of this.tasks.values()) {
      const t = list.find((x) => x.id === taskId);
      if (t) return t;
    }
    return undefined;
  }

  // ---- Marathon's REST API ----

  /** A version (an ISO timestamp) later than every one given before, as two changes in one millisecond still differ. */
  private nextVersion(): string {
    this.lastVersion = Math.max(Date.now(), this.lastVersion + 1);
    return new Date(this.lastVersion).toISOString();
  }

  /** `readiness`: the request asked for `embed=apps.readiness` (or `app.readiness`). */
  private appJson(id: string, readiness: boolean): Record<string, unknown> {
    const app = this.apps.get(id)!;
    const tasks = this.tasks.get(id) ?? [];
    const deployment = this.deployments.get(id);
    // Marathon reports results only while a deployment runs.
    const results = readiness && deployment ? tasks.flatMap((t) => {
      const ready = this.readiness.get(t.id);
      return ready === undefined ? [] : [{ name: 'readinessCheck', taskId: t.id, ready,
        lastResponse: { status: ready ? 200 : 503, contentType: 'text/plain', body: ready ? 'ready' : 'warming up' } }];
    }) : null;
    return {
      ...app,
      deployments: deployment ? [{ id: deployment }] : [],
      ...(results ? { readinessCheckResults: results } : {}),
      tasksRunning: tasks.filter((t) => t.state === 'TASK_RUNNING').length,
      ...(this.withoutTasks ? {} : { tasks: tasks.map(({ alive, checks, ...t }) => ({
        ...t,
        servicePorts: [],
        ...(alive === null ? {} : {
          healthCheckResults: (checks ?? [alive]).map((ok) => ({ alive: ok, consecutiveFailures: ok ? 0 : 3, firstSuccess: t.startedAt, lastSuccess: ok ? iso() : null, lastFailure: ok ? null : iso(), instanceId: t.id.replace(/\._app\.\d+$/, '') })),
        }),
      })) }),
    };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (url.pathname.startsWith('/_control/')) {
      void this.control(req, res, url);
      return;
    }
    if (this.options.authorization && req.headers.authorization !== this.options.authorization) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"Unauthorized"}');
      return;
    }
    if (url.pathname === '/ping') {
      res.end('pong');
      return;
    }
    if (url.pathname === '/v2/events') {
      this.requests.events += 1;
      if (this.eventsStatus !== null) {
        res.writeHead(this.eventsStatus, { 'content-type': 'application/json' }).end('{"message":"events refused"}');
        return;
      }
      if (this.redirectEvents) {
        res.writeHead(307, { location: this.redirectEvents + url.pathname + url.search }).end();
        return;
      }
      if (!(req.headers.accept ?? '').includes('text/event-stream')) {
        res.writeHead(406).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(`event: event_stream_attached\ndata: ${JSON.stringify({ remoteAddress: req.socket.remoteAddress, eventType: 'event_stream_attached', timestamp: iso() })}\n\n`);
      this.streams.add(res);
      res.once('close', () => this.streams.delete(res));
      if (this.flapping) setTimeout(() => res.destroy(), 20);
      return;
    }
    if (this.failures && this.failures.remaining > 0 && url.pathname.startsWith('/v2/apps')) {
      this.failures.remaining -= 1;
      res.writeHead(this.failures.status, { 'content-type': 'application/json' }).end(this.failures.body ?? '{"message":"failure injected"}');
      return;
    }
    if (url.pathname === '/v2/apps' || url.pathname === '/v2/apps/') {
      this.requests.apps += 1;
      const readiness = url.searchParams.getAll('embed').includes('apps.readiness');
      this.answer(res, 200, JSON.stringify({ apps: [...[...this.apps.keys()].map((id) => this.appJson(id, readiness)), ...this.rawApps] }));
      return;
    }
    if (url.pathname.startsWith('/v2/apps/')) {
      this.requests.app += 1;
      const id = decodeURI(url.pathname.slice('/v2/apps'.length));
      if (!this.apps.has(id)) this.answer(res, 404, JSON.stringify({ message: `App '${id}' does not exist` }));
      else this.answer(res, 200, JSON.stringify({ app: this.appJson(id, url.searchParams.getAll('embed').includes('app.readiness')) }));
      return;
    }
    res.writeHead(404).end();
  }

  private async control(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    let body: Record<string, unknown> = {};
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (chunks.length > 0) body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const parts = url.pathname.split('/').filter(Boolean).slice(1);
      const reply = (value: unknown): void => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value) + '\n');
      };
      if (parts[0] === 'apps' && parts.length === 1 && req.method === 'POST') {
        this.putApp(body as AppDefinition);
        return reply({ ok: true });
      }
      if (parts[0] === 'apps' && parts[parts.length - 1] === 'scale') {
        const id = '/' + parts.slice(1, -1).join('/');
        const started = await this.scale(id, Number(body.instances));
        return reply({ tasks: this.tasksOf(id).map((t) => t.id), started: started.map((t) => t.id) });
      }
      if (parts[0] === 'apps' && parts[parts.length - 1] === 'deployment') {
        const id = '/' + parts.slice(1, -1).join('/');
        if (req.method !== 'DELETE') return reply({ deployment: this.startDeployment(id) });
        this.finishDeployment(id);
        return reply({ ok: true });
      }
      if (parts[0] === 'apps' && req.method === 'DELETE') {
        this.removeApp('/' + parts.slice(1).join('/'));
        return reply({ ok: true });
      }
      if (parts[0] === 'apps' && parts[parts.length - 1] === 'tasks') {
        return reply(this.tasksOf('/' + parts.slice(1, -1).join('/')));
      }
      if (parts[0] === 'tasks' && parts[2] === 'kill') {
        this.killTask(decodeURIComponent(parts[1]!));
        return reply({ ok: true });
      }
      if (parts[0] === 'tasks' && parts[2] === 'health') {
        this.setHealth(decodeURIComponent(parts[1]!), body.alive === true);
        return reply({ ok: true });
      }
      if (parts[0] === 'tasks' && parts[2] === 'readiness') {
        this.setReadiness(decodeURIComponent(parts[1]!), body.ready === true);
        return reply({ ok: true });
      }
      if (parts[0] === 'stream' && parts[1] === 'drop') {
        this.dropStreams();
        return reply({ ok: true });
      }
      if (parts[0] === 'stream' && parts[1] === 'stall') {
        this.stall(body.on !== false);
        return reply({ ok: true });
      }
      if (parts[0] === 'rest' && parts[1] === 'fail') {
        this.failRest(Number(body.status ?? 500), Number(body.count ?? 1), body.body as string | undefined);
        return reply({ ok: true });
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('unknown control path\n');
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`);
    }
  }
}
