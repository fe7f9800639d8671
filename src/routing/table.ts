// buildRoutingTable: Marathon apps + options -> the services Turbine serves. Pure: no I/O, no
// clock. The table is plain data (it crosses process boundaries to workers) and is never mutated.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { TEMPLATE_LABELS } from '../config/marathon-lb-reference.js';
import type { HostAddresses } from '../discovery/host-resolver.js';
import { awaitsReadiness, type HealthCheck, type MarathonApp, type MarathonTask, type TaskState } from '../marathon/decode.js';
import { readPortLabels, type Balance, type HttpFeatureLabels, type LabelWarning, type Mode } from './labels.js';

export interface RoutingOptions {
  groups: readonly string[];
  strictMode: boolean;
  healthCheck: boolean;
  /** --min/--max-serv-port-ip-per-task: the range IP-per-task ports without a service port get one from. */
  ipPerTaskPorts?: { min: number; max: number };
  /** marathon-lb's --haproxy-map. */
  haproxyMap?: boolean;
  /** Turbine's own ports (--http-port, --https-port, --admin-port, --appid-port) by port: a service claiming one is skipped. */
  ownPorts?: ReadonlyMap<number, string>;
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
  /** When the task first ran, ms since the epoch (null: unknown); an active check's grace period counts from it. */
  startedAt: number | null;
}

export type ExclusionReason = 'task-state' | 'marathon-health' | 'not-ready' | 'no-address';

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
  /** Consecutive failures that eject a backend: HAProxy's `fall`, Marathon's maxConsecutiveFailures + 1 (marathon-lb). */
  fall: number;
  /** Marathon's gracePeriodSeconds: failures within this long of a task's start, before it first passes, are ignored. */
  gracePeriodMs: number;
}

export interface Service extends HttpFeatureLabels {
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
  /** With --haproxy-map, a virtual host with no path, auth or redirect: marathon-lb looks it up in its map after every other rule. */
  mapRouted?: boolean;
  healthCheck: ActiveCheck | null;
  backends: Backend[];
  /** Addresses of backends kept but given no new traffic (blue/green: the old colour draining). */
  draining: string[];
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
const TCP_CHECKS = new Set(['TCP', 'MESOS_TCP']);
/** marathon-lb's MAX_CLASHES: hash trials before it takes the first free port of the range. */
const MAX_CLASHES = 50;

/**
 * marathon-lb's ServicePortAssigner for an IP-per-task port with no service port: sha1 of
 * `${appId}-${containerPort}-${trial}`, first 8 hex digits, modulo the range size. Clashes are
 * avoided among the app's own ports (marathon-lb also avoids other apps' ports, in app order).
 */
function assignedServicePort(appId: string, containerPort: number, range: { min: number; max: number }, taken: ReadonlySet<number>): number | null {
  const size = range.max - range.min + 1;
  if (size <= 0) return null;
  for (let trial = 0; trial < MAX_CLASHES; trial++) {
    const hash = Number.parseInt(createHash('sha1').update(`${appId}-${containerPort}-${trial}`).digest('hex').slice(0, 8), 16);
    const port = range.min + (hash % size);
    if (!taken.has(port)) return port;
  }
  for (let port = range.min; port <= range.max; port++) if (!taken.has(port)) return port;
  return null;
}
const TEMPLATE_LABEL = new RegExp(`^HAPROXY_\\d+_(${TEMPLATE_LABELS.join('|')})$`);

/** HAProxy template labels have nothing to act on in Turbine: said once per app and label, never silently dropped. */
function templateWarnings(app: MarathonApp): LabelWarning[] {
  return Object.keys(app.labels).filter((l) => TEMPLATE_LABEL.test(l)).sort().map((label) => ({
    appId: app.id, label, kind: 'not-applied' as const,
    reason: 'HAProxy template text: Turbine writes no HAProxy config, so it is not applied',
  }));
}

function groupServed(groups: readonly string[], served: readonly string[]): boolean {
  if (served.includes('*')) return true;
  return groups.some((g) => served.includes(g));
}

/**
 * marathon-lb: a check with an explicit `port` applies to every port index; else the one whose
 * portIndex matches. A check with neither (a COMMAND check) applies to none.
 */
function checkFor(app: MarathonApp, index: number): HealthCheck | undefined {
  return app.healthChecks.find((h) => h.port !== null || h.portIndex === index);
}

/**
 * As marathon-lb's config: a tcp-mode port, or a TCP check, gets a connect check; an http-mode port
 * gets an http check on the Marathon check's path (COMMAND and MESOS_* checks included, since
 * HAProxy cannot run them but can probe the port).
 */
function activeCheck(check: HealthCheck | undefined, mode: Mode): ActiveCheck | null {
  if (!check) return null;
  const protocol = mode === 'tcp' || TCP_CHECKS.has(check.protocol) ? 'tcp' : check.protocol.endsWith('HTTPS') ? 'https' : 'http';
  return {
    protocol,
    path: check.path ?? '/',
    intervalMs: Math.max(check.intervalSeconds, 1) * 1000,
    timeoutMs: Math.max(check.timeoutSeconds, 1) * 1000,
    fall: Math.max(check.maxConsecutiveFailures, 0) + 1,
    gracePeriodMs: check.gracePeriodSeconds * 1000,
  };
}

function taskAddress(app: MarathonApp, task: MarathonTask, index: number, hosts: HostAddresses | undefined): { host: string; port: number } | null {
  if (app.ipPerTask) {
    const ip = task.ipAddresses[0];
    const port = app.ports[index]?.containerPort;
    return ip && port ? { host: ip, port } : null;
  }
  const port = task.ports[index];
  const host = hosts === undefined || isIP(task.host) ? task.host : hosts.get(task.host);
  return host && port ? { host, port } : null;
}

export interface AppResult {
  services: Service[];
  warnings: LabelWarning[];
}

/** Without `hosts`, agent host names are used as they are (no resolution). */
export function servicesOfApp(app: MarathonApp, options: RoutingOptions, hosts: HostAddresses | undefined, drainingTasks: ReadonlySet<string>): AppResult {
  const warnings: LabelWarning[] = templateWarnings(app);
  const services: Service[] = [];
  const filterByHealth = options.healthCheck && app.healthChecks.length > 0;
  if (app.ports.length === 0) {
    const portLabel = Object.keys(app.labels).find((l) => /^HAPROXY_\d+_/.test(l));
    if (portLabel) warnings.push({ appId: app.id, label: portLabel, reason: 'the app defines no ports (portDefinitions or portMappings): nothing to serve' });
  }

  app.ports.forEach((spec, index) => {
    const labels = readPortLabels(app.id, app.labels, index, warnings);
    if (!groupServed(labels.groups, options.groups)) return;
    if (labels.enabled === false || (options.strictMode && labels.enabled !== true)) return;
    const autoPort = () => (app.ipPerTask && spec.containerPort !== null && options.ipPerTaskPorts
      ? assignedServicePort(app.id, spec.containerPort, options.ipPerTaskPorts, new Set(services.map((x) => x.servicePort)))
      : null);
    const servicePort = labels.port ?? spec.servicePort ?? autoPort();
    if (servicePort === null) {
      warnings.push({ appId: app.id, label: `HAPROXY_${index}_PORT`, reason: 'no service port from Marathon and no HAPROXY_{n}_PORT: port skipped' });
      return;
    }
    // Not bound over Turbine's own listener: the app would go unserved with no word, or (the admin
    // port) fail to bind and turn the health check of the whole load balancer to 503.
    const own = options.ownPorts?.get(servicePort);
    if (own !== undefined) {
      warnings.push({ appId: app.id, label: `HAPROXY_${index}_PORT`, reason: `service port ${servicePort} is Turbine's ${own}: port skipped` });
      return;
    }
    // With no check of its own, the port takes the one at HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX (marathon-lb's get_apps).
    const check = checkFor(app, index) ?? (labels.healthCheckPortIndex !== null ? checkFor(app, labels.healthCheckPortIndex) : undefined);
    // marathon-lb's code reads an explicit MODE label last, so it beats an HTTP health check; only
    // a plain `HTTP` check (not MESOS_HTTP or HTTPS) implies http when no label says otherwise.
    const mode: Mode = labels.mode ?? (check?.protocol === 'HTTP' || labels.vhosts.length > 0 ? 'http' : 'tcp');
    const checkIndex = labels.healthCheckPortIndex ?? index;
    if (labels.securityError !== null) return;
    if (mode === 'http' && labels.tls.certs.length > 0 && labels.tls.alpn?.some((p) => p !== 'http/1.1')) {
      warnings.push({ appId: app.id, label: `HAPROXY_${index}_BIND_OPTIONS`, kind: 'not-applied', reason: 'alpn: an http-mode port speaks HTTP/1.1 to clients, so only http/1.1 is offered' });
    }

    const backends: Backend[] = [];
    const draining: string[] = [];
    const excluded: ExcludedTask[] = [];
    const seen = new Set<string>();
    for (const task of app.tasks) {
      const address = taskAddress(app, task, index, hosts);
      const key = address ? `${address.host}:${address.port}` : null;
      if (task.state !== null && !BACKEND_STATES.has(task.state)) {
        excluded.push({ taskId: task.id, address: key, reason: 'task-state', detail: task.state });
        continue;
      }
      if (filterByHealth && task.healthAlive !== true) {
        excluded.push({ taskId: task.id, address: key, reason: 'marathon-health', detail: task.healthAlive === false ? 'failing' : 'no result yet' });
        continue;
      }
      // Marathon's readiness checks, during a deployment (marathon-lb serves such tasks at once).
      if (awaitsReadiness(task)) {
        excluded.push({ taskId: task.id, address: key, reason: 'not-ready', detail: task.readiness === 'not-ready' ? 'readiness check not passed yet' : 'no readiness result yet' });
        continue;
      }
      if (!address || !key) {
        const unresolved = !app.ipPerTask && task.host !== '' && task.ports[index] !== undefined;
        // null: the lookup failed (reported); absent: the first lookup is still under way.
        const failed = unresolved && hosts?.get(task.host) === null;
        excluded.push({ taskId: task.id, address: null, reason: 'no-address',
          detail: app.ipPerTask ? 'no task IP or container port' : !unresolved ? 'no host or host port' : failed ? `agent host ${task.host} does not resolve` : `agent host ${task.host} not resolved yet` });
        if (failed) warnings.push({ appId: app.id, label: `host ${task.host}`, reason: `agent host ${task.host} does not resolve: task ${task.id} skipped`, kind: 'malformed' });
        continue;
      }
      if (seen.has(key)) continue;
      seen.add(key);
      if (drainingTasks.has(task.id)) draining.push(key);
      backends.push({
        address: key, host: address.host, port: address.port, taskId: task.id, appId: task.appId, // a blue/green colour's own id
        startedAt: task.startedAt,
        checkPort: check?.port ?? taskAddress(app, task, checkIndex, hosts)?.port ?? address.port,
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
      // marathon-lb: a PATH rule must come before the same vhost's catch-all, so PATH forces weight >= 1.
      backendWeight: labels.paths.length > 0 ? Math.max(labels.backendWeight, 1) : labels.backendWeight,
      redirectToHttps: labels.redirectToHttps,
      sticky: labels.sticky,
      ...(options.haproxyMap && labels.vhosts.length > 0 && labels.paths.length === 0 && labels.auth === null && !labels.redirectToHttps ? { mapRouted: true } : {}),
      healthCheck: activeCheck(check, mode),
      auth: labels.auth,
      hsts: labels.hsts,
      proxyPassPath: labels.proxyPassPath,
      revProxyPath: labels.revProxyPath,
      rootRedirect: labels.rootRedirect,
      networkAllowed: labels.networkAllowed,
      sslCert: labels.sslCert,
      bindOptions: labels.bindOptions,
      backends,
      draining,
      excluded,
    });
  });
  return { services, warnings };
}
