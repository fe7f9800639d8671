// Wires the parts together: Marathon -> AppStore -> routing table -> proxy, with admin, metrics and
// health checks beside them. Owns start, stop, signals and graceful shutdown.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { MAX_WORKERS, type Options } from './config/options.js';
import { appIdMap, vhostMap } from './admin/haproxy-maps.js';
import { AdminServer } from './admin/server.js';
import { haproxyCsvView, routesView, statsView } from './admin/views.js';
import { AppStore } from './discovery/app-store.js';
import { HostResolver } from './discovery/host-resolver.js';
import { MarathonSync } from './discovery/marathon-sync.js';
import { stateFileKeeper } from './discovery/state-keeper.js';
import { ActiveHealthChecker } from './health/active.js';
import { decideEjections, type EjectionDecision } from './health/ejection-limits.js';
import { MarathonClient, basicAuthorization } from './marathon/client.js';
import { DcosAuth, parseDcosCredentials, type TokenAuthorization } from './marathon/dcos-auth.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import type { DataPlane, DataPlaneSetup, ListenerStatus } from './proxy/data-plane.js';
import { Proxy } from './proxy/proxy.js';
import { cgroupCpuLimit } from './cluster/cpu-limit.js';
import { ProxyWorkers } from './cluster/workers.js';
import { TableBuilder } from './routing/builder.js';
import { isEmptySummary, summariseChange, type ChangeSummary } from './routing/changes.js';
import type { LabelWarning } from './routing/labels.js';
import type { RoutingOptions, RoutingTable } from './routing/table.js';

const HOST_TTL_MS = 60_000;

export interface Turbine {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly plane: DataPlane;
  readonly sync: MarathonSync;
  readonly adminPort: number;
  table(): RoutingTable | null;
  /** Resolves once the next table (after this call) is serving. */
  nextTable(): Promise<RoutingTable>;
  /** The health check answers 503 at once; traffic is served `graceMs` more, then drained. */
  stop(graceMs?: number): Promise<void>;
}

export function routingOptions(options: Options): RoutingOptions {
  const own: [number, string][] = [[options.httpPort, '--http-port'], [options.httpsPort, '--https-port'], [options.adminPort, '--admin-port'], [options.appidPort, '--appid-port']];
  return { groups: options.group, strictMode: options.strictMode, healthCheck: options.healthCheck,
    ipPerTaskPorts: { min: options.minServPortIpPerTask, max: options.maxServPortIpPerTask }, ownPorts: new Map(own.filter(([port]) => port > 0)), haproxyMap: options.haproxyMap };
}

export function createMarathonClient(options: Options): MarathonClient {
  return new MarathonClient({ urls: options.marathon, authorization: marathonAuthorization(options), caCertFile: options.marathonCaCert, timeoutMs: 30_000 });
}

/** marathon-lb's order: the credential file, then --auth-credentials, then the DC/OS service account. */
function marathonAuthorization(options: Options): string | TokenAuthorization | null {
  if (options.marathonAuthCredentialFile) {
    let text: string;
    try {
      text = readFileSync(options.marathonAuthCredentialFile, 'utf8');
    } catch (err) {
      throw new Error(`--marathon-auth-credential-file: cannot read it: ${(err as Error).message}`);
    }
    return basicAuthorization(text.trim().split('\n')[0] ?? '');
  }
  if (options.authCredentials !== null || options.dcosAuthCredentials === null) return basicAuthorization(options.authCredentials);
  try {
    return new DcosAuth(parseDcosCredentials(options.dcosAuthCredentials));
  } catch (err) {
    throw new Error(`--dcos-auth-credentials: ${(err as Error).message}`);
  }
}

export async function startTurbine(options: Options, logger: Logger = createLogger({ level: options.logLevel, format: options.logFormat })): Promise<Turbine> {
  const log = logger.child({ component: 'turbine' });
  const setup: DataPlaneSetup = {
    settings: {
      connectTimeoutMs: options.timeoutConnect * 1000,
      clientTimeoutMs: options.timeoutClient * 1000,
      serverTimeoutMs: options.timeoutServer * 1000,
      tunnelTimeoutMs: options.timeoutTunnel * 1000,
      httpRequestTimeoutMs: options.timeoutHttpRequest * 1000,
      keepAliveTimeoutMs: options.timeoutHttpKeepAlive * 1000,
      drainTimeoutMs: options.drainTimeout * 1000,
      maxconn: options.maxconn,
      maxconnPerService: options.maxconnPerService,
      accessLog: options.accessLog,
      seriesRetentionMs: options.metricsRetention * 1000,
    },
    fixed: {
      bind: options.bind,
      httpPort: options.dontBindHttpHttps ? null : options.httpPort,
      httpsPort: options.dontBindHttpHttps ? null : options.httpsPort,
      appidPort: options.appidPort,
    },
    sslCerts: options.sslCerts,
    ejectAfterFailures: options.ejectAfterFailures,
    ejectMs: options.ejectSeconds * 1000,
  };
  // One per CPU the container may use (its quota, when lower than the CPUs it sees), at most --workers' own cap, and
  // no more than the connection limits, of which each worker admits an equal share (a worker with none would refuse everything).
  const workerCount = options.workers === 0
    ? Math.min(availableParallelism(), cgroupCpuLimit() ?? Infinity, MAX_WORKERS, options.maxconn, options.maxconnPerService || Infinity)
    : options.workers;
  const workers = workerCount > 1 ? new ProxyWorkers(setup, workerCount, options.logLevel, logger) : null;
  const plane: DataPlane = workers ?? Proxy.create(setup, logger);
  const metrics = new Metrics({
    traffic: () => plane.traffic(),
    backends: () => (current?.services ?? []).flatMap((s) => [
      ...s.backends.map((b) => ({ service: s.id, backend: b.address, reasons: plane.downReasons(b.address) })),
      // Running tasks Marathon calls unhealthy or not ready yet are backends that are down, not absent.
      ...s.excluded.filter((e) => (e.reason === 'marathon-health' || e.reason === 'not-ready') && e.address !== null)
        .map((e) => ({ service: s.id, backend: e.address!, reasons: [e.reason] })),
    ]).concat(plane.drainingBackends().map((d) => ({ ...d, reasons: ['draining'] }))),
    ejection: () => ejection.services,
    listeners: () => plane.listenerStatus(),
    workers: () => workers?.processes() ?? [],
    workerRestarts: () => workers?.restarts ?? 0,
  });
  const checker = options.activeHealthChecks ? new ActiveHealthChecker(plane) : null;

  const store = new AppStore();
  const builder = new TableBuilder(routingOptions(options));
  const resolver = new HostResolver({ ttlMs: HOST_TTL_MS, onChange: () => onChange(performance.now()), onError: (host, error) => log.warn({ host, err: error }, 'agent host does not resolve') });
  // Each build asks only for the changed apps' hosts; this re-resolves every agent's name once per TTL.
  const hostRefresh = setInterval(() => resolver.addresses(hostsOf(store, store.snapshot().map((a) => a.id))), HOST_TTL_MS);
  hostRefresh.unref();
  let current: RoutingTable | null = null;
  let generation = 0;
  /** The newest generation the data plane has applied. */
  let serving = 0;
  let draining = false;
  let pendingSince: number | null = null;
  let waiters: ((t: RoutingTable) => void)[] = [];
  let ejection: EjectionDecision = { routable: new Set(), services: [] };
  const limits = { maxEjectionPercent: options.maxEjectionPercent, panicThresholdPercent: options.panicThreshold };
  // Decided here, from every worker's ejections (reported twice a second), and sent to all of them.
  const decideLimits = () => {
    const next = decideEjections(current, (address) => plane.downReasons(address), limits);
    const changed = next.routable.size !== ejection.routable.size || [...next.routable].some((a) => !ejection.routable.has(a));
    const panicked = new Set(ejection.services.filter((s) => s.panic).map((s) => s.service));
    const panicking = new Set(next.services.filter((s) => s.panic).map((s) => s.service));
    for (const s of next.services) if (s.panic && !panicked.has(s.service)) log.warn({ service: s.service, backends: s.backends }, 'panic: too few backends up; routing to all of them');
    for (const service of panicked) if (!panicking.has(service)) log.info({ service }, 'panic over: enough backends up again');
    ejection = next;
    if (changed) plane.setRoutable([...next.routable]);
  };
  const limitsTimer = setInterval(decideLimits, 500);
  limitsTimer.unref();

  let backendCount = 0;
  const rebuild = () => {
    const arrivedAt = pendingSince ?? performance.now();
    pendingSince = null;
    const changedApps = store.takeChanges();
    const hosts = resolver.addresses(hostsOf(store, changedApps));
    const change = builder.update(store, changedApps, generation + 1, hosts);
    if (current !== null && change.table === current) {
      settle(current);
      return;
    }
    const table = change.table;
    const known = new Set(change.warningsChanged ? current?.warnings.map(warningKey) : []);
    const newWarnings = change.warningsChanged ? table.warnings.filter((w) => !known.has(warningKey(w))) : [];
    generation = table.generation;
    current = table;
    // Serving means the data plane applied it: with workers, each one acknowledged it.
    void plane.apply(change).then((failures) => {
      for (const failure of failures) metrics.listenerErrors.inc({ reason: failure.reason });
      metrics.convergence.observe((performance.now() - arrivedAt) / 1000);
      serving = Math.max(serving, table.generation);
      settle(table);
    });
    checker?.update(change.services);
    for (const [before, after] of change.services) backendCount += (after?.backends.length ?? 0) - (before?.backends.length ?? 0);
    metrics.tableGeneration.set(generation);
    metrics.tableApps.set(table.appCount);
    metrics.tableServices.set(table.services.length);
    metrics.tableBackends.set(backendCount);
    metrics.labelWarnings.set(table.warnings.length);
    // The summary walks every changed service's backends: only worth it when the line is written.
    if (log.isLevelEnabled('info')) {
      const summary = summariseChange(change.services);
      if (!isEmptySummary(summary)) logChange(log, generation, summary);
    }
    for (const w of newWarnings) log.warn({ appId: w.appId, label: w.label, reason: w.reason }, 'label ignored');
  };
  const settle = (table: RoutingTable) => {
    const resolved = waiters;
    waiters = [];
    for (const resolve of resolved) resolve(table);
  };

  const state = options.stateFile ? stateFileKeeper(options.stateFile, store, metrics, log) : null;
  const client = createMarathonClient(options);
  const onChange = (arrivedAt: number) => {
    state?.saveSoon();
    // Coalesce a burst (one chunk of the stream can hold many events) into one rebuild.
    if (pendingSince !== null) return;
    pendingSince = arrivedAt;
    setImmediate(rebuild);
  };
  const sync: MarathonSync = new MarathonSync({
    client, store, logger, metrics, onChange,
    stallTimeoutMs: options.eventStallTimeout * 1000,
    resyncIntervalMs: options.resyncInterval * 1000,
    backoff: { initialMs: 250, maxMs: options.maxBackoff * 1000 },
    onFullSync: () => state?.saveNow(),
    onFullSyncFailed: () => {
      // Only at start: once Marathon has answered, its data (even old) beats the file's.
      if (!state || sync.getStatus().synced || current !== null) return;
      if (state.load()) onChange(performance.now());
    },
  });

  const admin = new AdminServer({
    registry: metrics.registry,
    health: () => {
      const unbound = plane.listenerStatus().filter((l) => l.error !== null && !l.certificateWarnings);
      return {
        ready: serving > 0,
        draining,
        problem: unboundProblem(unbound.filter((l) => !l.kind.startsWith('service-'))),
        detail: { generation, marathon: sync.getStatus(), listeners: unbound },
      };
    },
    routes: () => ({ ...routesView(current, plane, ejection), draining: plane.drainingBackends() }),
    stats: () => ({ ...statsView(current, plane, sync.getStatus()), workers: workers?.pids() ?? [] }),
    haproxyCsv: (csvOptions) => haproxyCsvView(current, plane, ejection, store.snapshot(), csvOptions),
    vhostMap: () => vhostMap(current, !options.dontBindHttpHttps),
    appMap: () => appIdMap(current, options.haproxyMap),
    resync: () => void sync.requestResync(),
    // One pid, as one HAProxy without a reload under way: zdd.py waits while it sees several.
    pids: () => [process.pid],
  });
  const adminPort = await admin.listen(options.bind, options.adminPort);
  await plane.start();
  sync.start();
  log.info({ adminPort, marathon: options.marathon, groups: options.group }, 'Turbine started');

  return {
    logger, metrics, plane, sync, adminPort,
    table: () => current,
    nextTable: () => new Promise((resolve) => { waiters.push(resolve); }),
    async stop(graceMs = 0) {
      // Report unhealthy first, and keep serving while the balancer in front notices; then drain.
      draining = true;
      if (graceMs > 0) await new Promise((resolve) => setTimeout(resolve, graceMs));
      clearInterval(limitsTimer);
      clearInterval(hostRefresh);
      sync.stop();
      state?.stop();
      checker?.stop();
      await plane.stop(options.drainTimeout * 1000);
      await admin.close();
      await client.close();
      log.info('Turbine stopped');
    },
  };
}

const warningKey = (w: LabelWarning) => `${w.appId}|${w.label}|${w.reason}`;

/**
 * Why the health check must fail while one of Turbine's own ports (--http-port, --https-port,
 * --appid-port: every virtual host and app id goes through them) is not bound; null when all are.
 * A service port that cannot be bound is one app's problem, shown in the detail and /routes: failing
 * the check for it would take every Turbine out of its balancer for one app's port (a tenant asking
 * for port 22), where marathon-lb's HAProxy keeps serving what it has.
 */
function unboundProblem(unbound: readonly ListenerStatus[]): string | null {
  if (unbound.length === 0) return null;
  return `cannot bind ${unbound.map((l) => `${l.key} (${l.error})`).join(', ')}`;
}

/** Backends listed one line each per table change; past this (a first sync of a large cluster), the summary counts the rest. */
const LISTED_MOVES = 100;

/** One line for the change, then one per backend that came or went, with service, app id, task id and backend as fields. */
function logChange(log: Logger, generation: number, summary: ChangeSummary): void {
  const moves = [...summary.backendsAdded.map((b) => ['backend added', b] as const), ...summary.backendsRemoved.map((b) => ['backend removed', b] as const)];
  log.info({
    generation, servicesAdded: summary.servicesAdded, servicesRemoved: summary.servicesRemoved, servicesChanged: summary.servicesChanged,
    backendsAdded: summary.backendsAdded.length, backendsRemoved: summary.backendsRemoved.length,
    ...(moves.length > LISTED_MOVES ? { backendsNotListed: moves.length - LISTED_MOVES } : {}),
  }, 'routing table changed');
  for (const [msg, b] of moves.slice(0, LISTED_MOVES)) log.info({ generation, service: b.service, appId: b.appId, taskId: b.taskId, backend: b.address }, msg);
}

function* hostsOf(store: AppStore, appIds: Iterable<string>): Iterable<string> {
  for (const id of appIds) for (const task of store.get(id)?.tasks ?? []) yield task.host;
}
