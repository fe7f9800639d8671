// buildRoutingTable: Marathon apps + options -> the services Turbine serves. Pure: no I/O, no
// clock. The table is plain data (it crosses process boundaries to workers) and is never mutated.
import type { HealthCheck, MarathonApp, MarathonTask, TaskState } from '../marathon/types.js';
import { readPortLabels, type Balance, type LabelWarning, type Mode } from './labels.js';

export interface RoutingOptions {
  groups: readonly string[];
  strictMode: boolean;
  healthCheck: boolean;
}

export interface Backend {
  /** host:port, the backend's identity in logs, metrics and balancer state. */
  address: string;
  host: string;
  port: number;
  /** Port the active health check connects to (HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX). */
  checkPort: number;
  taskId: string;
  appId: string;
}

export type ExclusionReason = 'task-state' | 'marathon-health' | 'no-address';

export interface ExcludedTask {
  taskId: string;
  /** host:port where the task would be reached; null when Marathon gave none. */
  address: string | null;
  reason: ExclusionReason;
  detail: string;
}

export interface ActiveCheck {
  protocol: 'http' | 'https' | 'tcp';
  path: string;
  intervalMs: number;
  timeoutMs: number;
  maxConsecutiveFailures: number;
}

export interface Service {
  /** `${appId}:${portIndex}`: stable across tables while the app port exists. */
  id: string;
  appId: string;
  portIndex: number;
  servicePort: number;
  mode: Mode;
  vhosts: string[];
  paths: string[];
  pathsCaseInsensitive: boolean;
  balance: Balance;
  bindAddr: string | null;
  backendWeight: number;
  /** Requests on the HTTP virtual-host port get a 301 to https (HAPROXY_{n}_REDIRECT_TO_HTTPS). */
  redirectToHttps: boolean;
  /** Cookie affinity (HAPROXY_{n}_STICKY). */
  sticky: boolean;
  healthCheck: ActiveCheck | null;
  backends: Backend[];
  excluded: ExcludedTask[];
}

export interface RoutingTable {
  generation: number;
  appCount: number;
  services: Service[];
  warnings: LabelWarning[];
}

/** marathon-lb routes to RUNNING tasks and, optimistically, to LOST and UNREACHABLE ones. */
const BACKEND_STATES: ReadonlySet<TaskState> = new Set(['TASK_RUNNING', 'TASK_LOST', 'TASK_UNREACHABLE']);
const HTTP_CHECKS = new Set(['HTTP', 'HTTPS', 'MESOS_HTTP', 'MESOS_HTTPS']);

function groupServed(group: string | null, groups: readonly string[]): boolean {
  if (groups.includes('*')) return true;
  return group !== null && groups.includes(group);
}

function checkFor(app: MarathonApp, index: number): HealthCheck | undefined {
  return app.healthChecks.find((h) => (h.portIndex ?? (h.port === null ? 0 : -1)) === index);
}

function activeCheck(check: HealthCheck | undefined): ActiveCheck | null {
  if (!check) return null;
  const protocol = HTTP_CHECKS.has(check.protocol) ? (check.protocol.endsWith('HTTPS') ? 'https' : 'http')
    : check.protocol === 'TCP' || check.protocol === 'MESOS_TCP' ? 'tcp' : null;
  if (protocol === null) return null;
  return {
    protocol,
    path: check.path ?? '/',
    intervalMs: Math.max(check.intervalSeconds, 1) * 1000,
    timeoutMs: Math.max(check.timeoutSeconds, 1) * 1000,
    maxConsecutiveFailures: Math.max(check.maxConsecutiveFailures, 1),
  };
}

function taskAddress(app: MarathonApp, task: MarathonTask, index: number): { host: string; port: number } | null {
  if (app.ipPerTask) {
    const ip = task.ipAddresses[0];
    const port = app.ports[index]?.containerPort;
    return ip && port ? { host: ip, port } : null;
  }
  const port = task.ports[index];
  return task.host && port ? { host: task.host, port } : null;
}

interface AppResult {
  services: Service[];
  warnings: LabelWarning[];
  /** Deployment group per service, for merging blue/green apps that share a service port. */
  deploymentGroups: (string | null)[];
}

function servicesOfApp(app: MarathonApp, options: RoutingOptions): AppResult {
  const warnings: LabelWarning[] = [];
  const services: Service[] = [];
  const deploymentGroups: (string | null)[] = [];
  const filterByHealth = options.healthCheck && app.healthChecks.length > 0;
  if (app.ports.length === 0) {
    const portLabel = Object.keys(app.labels).find((l) => /^HAPROXY_\d+_/.test(l));
    if (portLabel) warnings.push({ appId: app.id, label: portLabel, reason: 'the app defines no ports (portDefinitions or portMappings): nothing to serve' });
  }

  app.ports.forEach((spec, index) => {
    const labels = readPortLabels(app.id, app.labels, index, warnings);
    if (!groupServed(labels.group, options.groups)) return;
    if (labels.enabled === false || (options.strictMode && labels.enabled !== true)) return;
    const servicePort = labels.port ?? spec.servicePort;
    if (servicePort === null) {
      warnings.push({ appId: app.id, label: `HAPROXY_${index}_PORT`, reason: 'no service port from Marathon and no HAPROXY_{n}_PORT: port skipped' });
      return;
    }
    const check = checkFor(app, index);
    // marathon-lb's code reads an explicit MODE label last, so it beats an HTTP health check; only
    // a plain `HTTP` check (not MESOS_HTTP or HTTPS) implies http when no label says otherwise.
    const mode: Mode = labels.mode ?? (check?.protocol === 'HTTP' || labels.vhosts.length > 0 ? 'http' : 'tcp');
    const checkIndex = labels.healthCheckPortIndex ?? index;

    const backends: Backend[] = [];
    const excluded: ExcludedTask[] = [];
    const seen = new Set<string>();
    for (const task of app.tasks) {
      const address = taskAddress(app, task, index);
      const key = address ? `${address.host}:${address.port}` : null;
      if (task.state !== null && !BACKEND_STATES.has(task.state)) {
        excluded.push({ taskId: task.id, address: key, reason: 'task-state', detail: task.state });
        continue;
      }
      if (filterByHealth && task.healthAlive !== true) {
        excluded.push({ taskId: task.id, address: key, reason: 'marathon-health', detail: task.healthAlive === false ? 'failing' : 'no result yet' });
        continue;
      }
      if (!address || !key) {
        excluded.push({ taskId: task.id, address: null, reason: 'no-address', detail: app.ipPerTask ? 'no task IP or container port' : 'no host or host port' });
        continue;
      }
      if (seen.has(key)) continue;
      seen.add(key);
      backends.push({
        address: key, host: address.host, port: address.port, taskId: task.id, appId: app.id,
        checkPort: taskAddress(app, task, checkIndex)?.port ?? address.port,
      });
    }
    services.push({
      id: `${app.id}:${index}`,
      appId: app.id,
      portIndex: index,
      servicePort,
      mode,
      vhosts: labels.vhosts,
      paths: labels.paths,
      pathsCaseInsensitive: labels.pathsCaseInsensitive,
      balance: labels.balance ?? 'roundrobin',
      bindAddr: labels.bindAddr,
      backendWeight: labels.backendWeight,
      redirectToHttps: labels.redirectToHttps,
      sticky: labels.sticky,
      healthCheck: activeCheck(check),
      backends,
      excluded,
    });
    deploymentGroups.push(labels.deploymentGroup);
  });
  return { services, warnings, deploymentGroups };
}

export type TableBuilder = (apps: readonly MarathonApp[], generation: number) => RoutingTable;

/**
 * A builder that remembers each app's services by the app object, so an event that replaces one
 * app rebuilds one app. Apps are immutable values (the AppStore copies on write), which makes
 * object identity a sound cache key.
 */
export function createTableBuilder(options: RoutingOptions): TableBuilder {
  const cache = new WeakMap<MarathonApp, AppResult>();
  return (apps, generation) => {
    const sorted = [...apps].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const services: Service[] = [];
    const warnings: LabelWarning[] = [];
    const byListener = new Map<string, { service: Service; group: string | null; index: number }>();
    for (const app of sorted) {
      let result = cache.get(app);
      if (!result) {
        result = servicesOfApp(app, options);
        cache.set(app, result);
      }
      warnings.push(...result.warnings);
      result.services.forEach((service, i) => {
        const key = `${service.bindAddr ?? '*'}:${service.servicePort}`;
        const holder = byListener.get(key);
        const group = result!.deploymentGroups[i]!;
        if (!holder) {
          byListener.set(key, { service, group, index: services.length });
          services.push(service);
        } else if (group !== null && group === holder.group) {
          // Blue/green (HAPROXY_DEPLOYMENT_GROUP): both colours serve one port, as marathon-lb's zdd does.
          const merged = { ...holder.service, backends: [...holder.service.backends, ...service.backends], excluded: [...holder.service.excluded, ...service.excluded] };
          services[holder.index] = merged;
          byListener.set(key, { ...holder, service: merged });
        } else {
          warnings.push({ appId: service.appId, label: `HAPROXY_${service.portIndex}_PORT`, reason: `service port ${service.servicePort} is already served by ${holder.service.appId}: port skipped` });
        }
      });
    }
    return { generation, appCount: apps.length, services, warnings };
  };
}

export function buildRoutingTable(apps: readonly MarathonApp[], options: RoutingOptions, generation = 1): RoutingTable {
  return createTableBuilder(options)(apps, generation);
}
