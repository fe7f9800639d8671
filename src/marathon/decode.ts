// Marathon's JSON as Turbine uses it, and the decoders that admit it. Marathon JSON is untrusted
// input: decoders keep the fields routing needs, in one normalised shape for Marathon 1.4-1.9
// (portDefinitions, ports, container.portMappings, container.docker.portMappings), and report
// what they drop instead of throwing past the caller.

export const TASK_STATES = [
  'TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_FINISHED', 'TASK_FAILED',
  'TASK_KILLED', 'TASK_ERROR', 'TASK_LOST', 'TASK_DROPPED', 'TASK_UNREACHABLE', 'TASK_GONE',
  'TASK_GONE_BY_OPERATOR', 'TASK_UNKNOWN',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** States after which a task never runs again (Mesos); later events for it are stale. */
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set([
  'TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_DROPPED', 'TASK_GONE', 'TASK_GONE_BY_OPERATOR',
]);

export interface PortSpec {
  /** Marathon's service port (0 or missing when Marathon assigned none). */
  servicePort: number | null;
  containerPort: number | null;
  name: string | null;
}

export interface HealthCheck {
  protocol: string;
  path: string | null;
  portIndex: number | null;
  port: number | null;
  intervalSeconds: number;
  timeoutSeconds: number;
  maxConsecutiveFailures: number;
  gracePeriodSeconds: number;
}

export interface MarathonTask {
  id: string;
  appId: string;
  host: string;
  ports: number[];
  ipAddresses: string[];
  /** null for old Marathon versions that list tasks without a state: those are running. */
  state: TaskState | null;
  /** true/false from Marathon's health check results; null when Marathon gave none. */
  healthAlive: boolean | null;
  /** Milliseconds since the epoch of the last state we applied, for ordering events. */
  stateAt: number;
  /** When the task first ran (Marathon's startedAt), ms since the epoch; null before it runs or when unknown. */
  startedAt: number | null;
  /** Whether Marathon's readiness checks let the task take traffic (see Readiness). */
  readiness: Readiness;
}

/**
 * 'ready': nothing to wait for (no readiness checks, no deployment under way, a task from before
 * the deployment, or a passing result); 'not-ready': Marathon's result says not ready;
 * 'no-result': a task of the deployment Marathon has no result for yet, or one learned from an
 * event whose app has readiness checks (until the app is fetched again).
 */
export type Readiness = 'ready' | 'not-ready' | 'no-result';

/** The task waits for Marathon to call it ready (a task read from an older state file has no readiness: it is ready). */
export function awaitsReadiness(task: MarathonTask): boolean {
  return task.readiness === 'not-ready' || task.readiness === 'no-result';
}

export interface MarathonApp {
  id: string;
  labels: Readonly<Record<string, string>>;
  ports: PortSpec[];
  /** The task is reached on its own IP and the container port (Marathon IP-per-task networking). */
  ipPerTask: boolean;
  healthChecks: HealthCheck[];
  tasks: MarathonTask[];
  version: string | null;
  /** Instances Marathon was asked for (blue/green drains by it). */
  instances: number;
  /** versionInfo.lastScalingAt, ms since the epoch; null when absent. */
  lastScalingAt: number | null;
  /** The app defines readiness checks: a task learned from an event waits for a fetch to know its readiness. */
  hasReadinessChecks: boolean;
}

export interface DecodeProblem {
  what: 'app' | 'task' | 'label' | 'event' | 'readiness';
  id: string | null;
  reason: string;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asString = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const asPort = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 65535 ? v : null);
const asNumber = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fallback);

export function parseTimestamp(v: unknown): number | null {
  if (typeof v !== 'string') return null;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? null : ms;
}

/** Marathon app ids are absolute paths; event payloads sometimes omit the leading slash. */
export function normaliseAppId(id: string): string {
  return id.startsWith('/') ? id : '/' + id;
}

function decodePortSpecs(raw: Json): PortSpec[] {
  const container = isObject(raw.container) ? raw.container : null;
  const docker = container && isObject(container.docker) ? container.docker : null;
  const mappings = asArray(container?.portMappings).length > 0 ? asArray(container?.portMappings) : asArray(docker?.portMappings);
  if (mappings.length > 0) {
    return mappings.map((m) => ({
      servicePort: isObject(m) ? asPort(m.servicePort) : null,
      containerPort: isObject(m) ? asPort(m.containerPort) : null,
      name: isObject(m) ? asString(m.name) : null,
    }));
  }
  const ipDiscovery = isObject(raw.ipAddress) && isObject(raw.ipAddress.discovery) ? asArray(raw.ipAddress.discovery.ports) : [];
  if (ipDiscovery.length > 0) {
    return ipDiscovery.map((p) => ({
      servicePort: null, containerPort: isObject(p) ? asPort(p.number) : null, name: isObject(p) ? asString(p.name) : null,
    }));
  }
  const definitions = asArray(raw.portDefinitions);
  if (definitions.length > 0) {
    return definitions.map((d) => ({ servicePort: isObject(d) ? asPort(d.port) : null, containerPort: null, name: isObject(d) ? asString(d.name) : null }));
  }
  return asArray(raw.ports).map((p) => ({ servicePort: asPort(p), containerPort: null, name: null }));
}

function isIpPerTask(raw: Json): boolean {
  if (isObject(raw.ipAddress)) return true;
  return asArray(raw.networks).some((n) => isObject(n) && n.mode === 'container');
}

function decodeHealthCheck(raw: unknown): HealthCheck | null {
  if (!isObject(raw)) return null;
  const protocol = asString(raw.protocol) ?? 'HTTP';
  return {
    protocol: protocol.toUpperCase(),
    path: asString(raw.path),
    portIndex: typeof raw.portIndex === 'number' && Number.isInteger(raw.portIndex) && raw.portIndex >= 0 ? raw.portIndex : null,
    port: asPort(raw.port),
    intervalSeconds: asNumber(raw.intervalSeconds, 60),
    timeoutSeconds: asNumber(raw.timeoutSeconds, 20),
    maxConsecutiveFailures: asNumber(raw.maxConsecutiveFailures, 3),
    gracePeriodSeconds: asNumber(raw.gracePeriodSeconds, 300),
  };
}

function decodeLabels(raw: unknown, appId: string, problems: DecodeProblem[]): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!isObject(raw)) return labels;
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value === 'string') labels[key] = value;
    else problems.push({ what: 'label', id: appId, reason: `label ${key} is not a string` });
  }
  return labels;
}

function healthFromResults(v: unknown): boolean | null {
  // No results yet (an empty list) is unknown, not failing: marathon-lb then keeps the last answer.
  if (!Array.isArray(v) || v.length === 0) return null;
  return v.some((r) => isObject(r) && r.alive === true);
}

export function decodeTask(raw: unknown, appId: string, problems: DecodeProblem[]): MarathonTask | null {
  if (!isObject(raw)) {
    problems.push({ what: 'task', id: appId, reason: 'task is not an object' });
    return null;
  }
  const id = asString(raw.id);
  if (!id) {
    problems.push({ what: 'task', id: appId, reason: 'task has no id' });
    return null;
  }
  const state = raw.state === undefined || raw.state === null ? null : (raw.state as TaskState);
  if (state !== null && !TASK_STATES.includes(state)) {
    problems.push({ what: 'task', id, reason: `unknown task state ${JSON.stringify(raw.state)}` });
    return null;
  }
  const ports = asArray(raw.ports);
  const startedAt = parseTimestamp(raw.startedAt);
  return {
    id,
    appId,
    host: asString(raw.host) ?? '',
    ports: ports.map((p) => asPort(p) ?? 0),
    ipAddresses: asArray(raw.ipAddresses).flatMap((a) => (isObject(a) && asString(a.ipAddress) ? [a.ipAddress as string] : [])),
    state,
    healthAlive: healthFromResults(raw.healthCheckResults),
    // Marathon starts a task after staging it, so the later of the two is its latest known state.
    stateAt: Math.max(startedAt ?? 0, parseTimestamp(raw.stagedAt) ?? 0),
    startedAt,
    readiness: 'ready',
  };
}

/**
 * Readiness per task from `embed=apps.readiness`. Marathon lists `readinessCheckResults`
 * ({taskId, ready, ...}) only while a deployment runs, and checks only the tasks of the version it
 * deploys; the first result can lag a task's TASK_RUNNING, so such a task with no result waits.
 */
function readinessOf(raw: Json, appId: string, checked: boolean, problems: DecodeProblem[]): (task: Json, id: string) => Readiness {
  const results = new Map<string, boolean>();
  for (const r of asArray(raw.readinessCheckResults)) {
    const taskId = isObject(r) ? asString(r.taskId) : null;
    if (!isObject(r) || !taskId || typeof r.ready !== 'boolean') {
      problems.push({ what: 'readiness', id: appId, reason: 'a readinessCheckResults entry without taskId or ready' });
      continue;
    }
    // One check per app in practice; should there be several, every one must pass.
    results.set(taskId, (results.get(taskId) ?? true) && r.ready);
  }
  const deploying = asArray(raw.deployments).length > 0;
  const version = asString(raw.version);
  return (task, id) => {
    const result = results.get(id);
    if (result !== undefined) return result ? 'ready' : 'not-ready';
    return checked && deploying && version !== null && asString(task.version) === version ? 'no-result' : 'ready';
  };
}

/**
 * `listed`: the app comes from Marathon with its tasks embedded (embed=apps.tasks), so an app
 * without a `tasks` field is malformed (a proxy or a Marathon that dropped the parameter), not an
 * app with no task: read as none, it took every backend out of the table.
 */
export function decodeApp(raw: unknown, problems: DecodeProblem[], listed = false): MarathonApp | null {
  if (!isObject(raw)) {
    problems.push({ what: 'app', id: null, reason: 'app is not an object' });
    return null;
  }
  const rawId = asString(raw.id);
  if (!rawId) {
    problems.push({ what: 'app', id: null, reason: 'app has no id' });
    return null;
  }
  const id = normaliseAppId(rawId);
  if (raw.tasks !== undefined && raw.tasks !== null && !Array.isArray(raw.tasks)) {
    problems.push({ what: 'app', id, reason: 'tasks is not a list' });
    return null;
  }
  if (listed && raw.tasks === undefined) {
    problems.push({ what: 'app', id, reason: 'app has no tasks field (the embed parameter was not honoured)' });
    return null;
  }
  const hasReadinessChecks = asArray(raw.readinessChecks).length > 0;
  const readiness = readinessOf(raw, id, hasReadinessChecks, problems);
  return {
    id,
    labels: decodeLabels(raw.labels, id, problems),
    ports: decodePortSpecs(raw),
    ipPerTask: isIpPerTask(raw),
    healthChecks: asArray(raw.healthChecks).flatMap((h) => decodeHealthCheck(h) ?? []),
    tasks: asArray(raw.tasks).flatMap((t) => {
      const task = decodeTask(t, id, problems);
      return task ? [{ ...task, readiness: readiness(t as Json, task.id) }] : [];
    }),
    version: asString(raw.version),
    instances: asNumber(raw.instances, 0),
    lastScalingAt: isObject(raw.versionInfo) ? parseTimestamp(raw.versionInfo.lastScalingAt) : null,
    hasReadinessChecks,
  };
}

/**
 * The inverse of decodeApp: a decoded app in Marathon's wire shape, so that decodeApp(encodeApp(a))
 * equals `a` and a saved snapshot is read back by the same decoder (and rules) as Marathon's own
 * answers. The task's stateAt travels as stagedAt: decodeTask takes the later of the two times.
 */
export function encodeApp(app: MarathonApp): Json {
  // A field added to MarathonApp fails to compile here until it is encoded (and so saved).
  const { id, labels, ports, ipPerTask, healthChecks, tasks, version, instances, lastScalingAt, hasReadinessChecks, ...unencoded } = app;
  unencoded satisfies Record<string, never>;
  const iso = (ms: number | null) => (ms === null ? undefined : new Date(ms).toISOString());
  return {
    id, labels, instances, healthChecks,
    version: version ?? undefined,
    versionInfo: { lastScalingAt: iso(lastScalingAt) },
    container: { portMappings: ports },
    networks: ipPerTask ? [{ mode: 'container' }] : [],
    readinessChecks: hasReadinessChecks ? [{ name: 'readiness' }] : [],
    // A task still waiting for its first result is saved as not ready: either way it gets no traffic.
    readinessCheckResults: tasks.filter(awaitsReadiness).map((t) => ({ taskId: t.id, ready: false })),
    tasks: tasks.map((t) => ({
      id: t.id, appId: t.appId, host: t.host, ports: t.ports,
      ipAddresses: t.ipAddresses.map((ipAddress) => ({ ipAddress })),
      state: t.state ?? undefined,
      healthCheckResults: t.healthAlive === null ? [] : [{ alive: t.healthAlive }],
      stagedAt: iso(t.stateAt), startedAt: iso(t.startedAt),
    })),
  };
}

/** Decodes `GET /v2/apps?embed=apps.tasks`; one malformed app is reported and skipped, not fatal. */
export function decodeAppList(body: unknown, problems: DecodeProblem[]): MarathonApp[] {
  if (!isObject(body) || !Array.isArray(body.apps)) throw new Error('expected {"apps": [...]}');
  return body.apps.flatMap((a) => decodeApp(a, problems, true) ?? []);
}

/** The apps a decode skipped, by id: their last good version is kept rather than dropped. */
export function skippedApps(problems: readonly DecodeProblem[]): Set<string> {
  return new Set(problems.flatMap((p) => (p.what === 'app' && p.id !== null ? [p.id] : [])));
}

// ---- events ----

export type MarathonEvent =
  | { type: 'status_update_event'; taskId: string; appId: string; state: TaskState; host: string; ports: number[]; ipAddresses: string[]; at: number | null }
  | { type: 'health_status_changed_event'; appId: string; taskId: string | null; instanceId: string | null; alive: boolean; at: number | null }
  | { type: 'app_changed'; cause: string; appIds: string[]; at: number | null }
  | { type: 'app_terminated_event'; appId: string; at: number | null }
  | { type: 'ignored'; cause: string };

/** Event types Turbine subscribes to (passed as event_type filters). */
export const SUBSCRIBED_EVENTS = [
  'status_update_event', 'health_status_changed_event', 'instance_health_changed_event', 'api_post_event',
  'deployment_info', 'deployment_success', 'deployment_failed', 'deployment_step_success', 'deployment_step_failure',
  'app_terminated_event',
] as const;

export class MalformedEvent extends Error {
  override readonly name = 'MalformedEvent';

  /** The app the event was about, when it said: its state is fetched instead. */
  constructor(message: string, readonly appId: string | null = null) {
    super(message);
  }
}

function require<T>(value: T | null | undefined, what: string, type: string): T {
  if (value === null || value === undefined) throw new MalformedEvent(`${type}: missing or invalid ${what}`);
  return value;
}

function appIdsOfDeployment(json: Json): string[] {
  const ids = new Set<string>();
  const collect = (step: unknown) => {
    if (!isObject(step)) return;
    if (asString(step.app)) ids.add(normaliseAppId(step.app as string));
    for (const a of asArray(step.actions)) if (isObject(a) && asString(a.app)) ids.add(normaliseAppId(a.app as string));
  };
  const plan = isObject(json.plan) ? json.plan : null;
  for (const step of asArray(plan?.steps)) collect(step);
  collect(json.currentStep);
  return [...ids];
}

/** Decodes one JSON document from the stream; throws MalformedEvent when a known type lacks its fields. */
export function decodeEvent(json: unknown, sseType: string | null): MarathonEvent {
  if (!isObject(json)) throw new MalformedEvent('event data is not a JSON object');
  const type = asString(json.eventType) ?? sseType ?? 'unknown';
  const at = parseTimestamp(json.timestamp);
  switch (type) {
    case 'status_update_event': {
      const state = require(asString(json.taskStatus), 'taskStatus', type) as TaskState;
      if (!TASK_STATES.includes(state)) throw new MalformedEvent(`${type}: unknown taskStatus ${JSON.stringify(json.taskStatus)}`);
      const ports = asArray(json.ports).map(asPort);
      // A task's ports read as 0 took it out of the table as unreachable: the event is refused and
      // its app fetched instead (MalformedEvent.appId); a terminal one, which needs no port, still counts.
      const portsOk = ports.every((p) => p !== null);
      if (!portsOk && !TERMINAL_STATES.has(state)) {
        const appId = asString(json.appId);
        throw new MalformedEvent(`${type}: invalid ports ${JSON.stringify(json.ports).slice(0, 100)}`, appId ? normaliseAppId(appId) : null);
      }
      return {
        type, state, at,
        taskId: require(asString(json.taskId), 'taskId', type),
        appId: normaliseAppId(require(asString(json.appId), 'appId', type)),
        host: asString(json.host) ?? '',
        ports: portsOk ? ports as number[] : [],
        ipAddresses: asArray(json.ipAddresses).flatMap((a) => (isObject(a) && asString(a.ipAddress) ? [a.ipAddress as string] : [])),
      };
    }
    case 'health_status_changed_event': {
      const taskId = asString(json.taskId);
      const instanceId = asString(json.instanceId);
      if (!taskId && !instanceId) throw new MalformedEvent(`${type}: missing taskId and instanceId`);
      if (typeof json.alive !== 'boolean') throw new MalformedEvent(`${type}: missing or invalid alive`);
      return { type, taskId, instanceId, alive: json.alive, at, appId: normaliseAppId(require(asString(json.appId), 'appId', type)) };
    }
    case 'instance_health_changed_event': {
      const instanceId = require(asString(json.instanceId), 'instanceId', type);
      const appId = normaliseAppId(require(asString(json.runSpecId), 'runSpecId', type));
      // healthy: null means Marathon has no result yet; it takes nothing out or in.
      if (typeof json.healthy !== 'boolean') return { type: 'ignored', cause: `${type} without a result` };
      return { type: 'health_status_changed_event', taskId: null, instanceId, alive: json.healthy, appId, at };
    }
    case 'api_post_event': {
      const def = isObject(json.appDefinition) ? json.appDefinition : null;
      const id = asString(def?.id);
      return { type: 'app_changed', cause: type, appIds: id ? [normaliseAppId(id)] : [], at };
    }
    case 'deployment_info':
    case 'deployment_success':
    case 'deployment_failed':
    case 'deployment_step_success':
    case 'deployment_step_failure':
      return { type: 'app_changed', cause: type, appIds: appIdsOfDeployment(json), at };
    case 'app_terminated_event':
      return { type, at, appId: normaliseAppId(require(asString(json.appId), 'appId', type)) };
    default:
      return { type: 'ignored', cause: type };
  }
}

/**
 * Splits one SSE `data` value into JSON documents: Marathon sometimes puts several documents in
 * one event, separated by CRLF (marathon-lb splits the same way).
 */
export function splitEventData(data: string): string[] {
  return data.split(/\r\n|\n|\r/).map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * The instance a task belongs to, as Marathon's Task.Id parses it. Marathon >= 1.5:
 * `app.instance-UUID._app.1` -> `app.instance-UUID`; older: `app.UUID` or `app_UUID` -> `app.marathon-UUID`,
 * and a resident task's `app.UUID.3` (its third launch) -> `app.marathon-UUID`.
 */
export function instanceIdOfTask(taskId: string): string {
  const instanceAt = taskId.indexOf('.instance-');
  if (instanceAt >= 0) {
    const end = taskId.indexOf('.', instanceAt + '.instance-'.length);
    return end < 0 ? taskId : taskId.slice(0, end);
  }
  const legacy = LEGACY_RESIDENT_TASK_ID.exec(taskId) ?? LEGACY_TASK_ID.exec(taskId);
  return legacy === null ? taskId : `${legacy[1]}.marathon-${legacy[2]}`;
}

/** Marathon's Task.Id patterns from before instances: run spec, `.` or `_`, UUID (and a resident task's `.attempt`). */
const LEGACY_RESIDENT_TASK_ID = /^(.+)[._]([^_.]+)\.(\d+)$/;
const LEGACY_TASK_ID = /^(.+)[._]([^_.]+)$/;
