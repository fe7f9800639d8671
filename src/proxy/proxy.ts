// The data plane: holds one compiled routing table and swaps it atomically; owns the listeners,
// the backend pools and per-service runtime (balancer state) that outlives a swap. It works from
// the plain-data table alone, so it runs the same in a worker process.
import type { Logger } from '../observability/logger.js';
import { ProxyStats, type StatsSnapshot } from '../observability/stats.js';
import { BackendHealth } from '../health/backend-health.js';
import { normaliseAppId } from '../marathon/decode.js';
import type { TableChange } from '../routing/changes.js';
import type { Backend, RoutingTable, Service } from '../routing/table.js';
import { Balancer } from './balancer.js';
import type { ProxyContext, ProxySettings, ServiceRuntime } from './context.js';
import { ClientConnection, type HttpSite } from './http1/connection.js';
import { authChallenge } from './http1/features.js';
import type { RequestHead } from './http1/request-head.js';
import { field } from './http1/request-head.js';
import type { LocalResponse } from './http1/respond.js';
import { UpstreamPool } from './http1/upstream.js';
import { ListenError, Listeners, type ListenerSpec } from './listeners.js';
import { Members } from './members.js';
import type { DataPlane, DataPlaneSetup, FixedPorts, ListenFailure, ListenerStatus } from './data-plane.js';
import { logBackendChange } from './backend-log.js';
import { DrainingBackends, type DrainingBackend } from './draining.js';
import { RouteIndex, hostOf, listenerKey, routeVhost } from './routes.js';
import { forwardTcp } from './tcp.js';
import { CertificateFiles } from './tls.js';
import { TlsListeners, tlsInputs } from './tls-listeners.js';
import type { LabelWarning } from '../routing/labels.js';

const LISTENER_RETRY_MS = 1000;
/** How often certificate files are checked for changes (a stat each), and TLS labels for edits. */
const TLS_REFRESH_MS = 1000;

/** An open TCP or WebSocket stream to a backend; onEnd is set once its backend is draining. */
interface TrackedStream {
  close(): void;
  onEnd: (() => void) | null;
}


const HOST_NAME = /^[a-z0-9._-]+(:\d+)?$|^\[[0-9a-f:.]+\](:\d+)?$/i;

/** 301 to the same host and path over https (marathon-lb's HAPROXY_{n}_REDIRECT_TO_HTTPS); the path is origin-form, never the raw target. */
function redirectToHttps(head: RequestHead, httpsPort: number): LocalResponse {
  const host = head.authority;
  // The authority is client input: only a plain host name goes into a Location header.
  if (!HOST_NAME.test(host)) return { status: 400, text: 'Bad Request: invalid Host header\n' };
  const hostname = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  const path = head.path === '*' ? '/' : head.path;
  return { status: 301, text: '', headers: [['location', `https://${hostname}${httpsPort === 443 ? '' : `:${httpsPort}`}${path}`]] };
}

export class Proxy implements DataPlane {
  /**
   * A proxy from plain settings (in this process or in a worker). `logActive`: whether active-check
   * changes are logged here (with workers the primary logs them once, each worker its ejections).
   */
  static create(setup: DataPlaneSetup, logger: Logger, logActive = true): Proxy {
    let proxy: Proxy | null = null;
    const health = new BackendHealth({
      ejectAfterFailures: setup.ejectAfterFailures,
      ejectMs: setup.ejectMs,
      onChange: (address, up, reasons) => {
        // Without logActive, only changes into or out of an ejection are this process's to log.
        if (!logActive && !reasons.includes('ejected') && !proxy?.wasEjected(address)) return;
        proxy?.logBackendChange(address, up, reasons);
      },
    });
    proxy = new Proxy(setup.settings, setup.fixed, health, new ProxyStats(setup.settings.seriesRetentionMs), logger, setup.sslCerts);
    return proxy;
  }

  private readonly ejectedLogged = new Set<string>();

  private wasEjected(address: string): boolean {
    return this.ejectedLogged.has(address);
  }

  private logBackendChange(address: string, up: boolean, reasons: string[]): void {
    if (reasons.includes('ejected')) this.ejectedLogged.add(address);
    else this.ejectedLogged.delete(address);
    logBackendChange(this.log, this.index.table, address, up, reasons);
  }

  private readonly index: RouteIndex;
  private readonly runtimes = new Map<string, ServiceRuntime>();
  /** The services of the table in force, by id, to find what a new table changed. */
  /** How many services route to each backend address; it retires when no service does. */
  private readonly addressRefs = new Map<string, number>();
  private readonly listeners: Listeners;
  private readonly context: ProxyContext;
  private readonly streams = new Map<string, Members<TrackedStream>>();
  private readonly sites = new WeakMap<ListenerSpec, HttpSite>();
  private readonly draining = new DrainingBackends();
  /** Retired addresses with streams open, and the timer that closes them at the drain timeout. */
  private readonly retiredStreams = new Map<string, NodeJS.Timeout>();
  private readonly fixedKeys = new Set<string>();
  private failedListeners = new Map<string, ListenError>();
  private openConnections = 0;
  private applying: Promise<void> = Promise.resolve();
  private listenerRetry: NodeJS.Timeout | null = null;
  private readonly tls: TlsListeners;
  private tlsRefresh: NodeJS.Timeout | null = null;
  /** The TLS labels the listeners were last planned from. */
  private plannedTls = '';
  /** Why a listener, or some virtual hosts on it, is not served: its certificates, by listener key. */
  private certificateWarnings = new Map<string, { kind: ListenerSpec['kind']; open: boolean; warnings: LabelWarning[] }>();

  constructor(
    private readonly settings: ProxySettings,
    private readonly fixed: FixedPorts,
    readonly health: BackendHealth,
    readonly stats: ProxyStats,
    private readonly log: Logger,
    sslCerts: readonly string[],
  ) {
    this.index = new RouteIndex(fixed.bind);
    const upstreams = new UpstreamPool(settings.drainTimeoutMs);
    this.context = { settings, health, stats, upstreams, log: log.child({ component: 'proxy' }), trackStream: (a, c) => this.trackStream(a, c) };
    this.listeners = new Listeners({
      http: (spec, socket) => new ClientConnection(this.context, this.site(spec), socket),
      tcp: (spec, socket) => forwardTcp(this.context, socket, this.serviceRuntime(this.index.byListener.get(spec.key)), spec.key),
      admit: (spec) => {
        if (this.openConnections >= settings.maxconn) {
          stats.clientError(spec.key, 'maxconn');
          return false;
        }
        this.openConnections += 1;
        stats.connectionOpened(spec.key);
        return true;
      },
      closed: (spec) => {
        this.openConnections -= 1;
        stats.connectionClosed(spec.key);
      },
      handshakeFailed: (spec) => stats.clientError(spec.key, 'tls-handshake'),
    }, settings.drainTimeoutMs, settings.clientTimeoutMs);
    const files = new CertificateFiles((path, reason, message, kept) => {
      stats.certificateError(path, reason);
      this.log.error({ certificate: path, reason, kept }, kept ? `${message}: the last good certificate is still served` : message);
    });
    this.tls = new TlsListeners(files, sslCerts);
  }

  /**
   * Opens the fixed listeners (virtual hosts, app id; HTTPS with --ssl-certs, else once an app brings
   * a certificate for its virtual hosts). A failure here is fatal for the caller.
   */
  async start(): Promise<void> {
    const specs: ListenerSpec[] = [];
    const add = (port: number | null, kind: ListenerSpec['kind']) => {
      if (port === null) return;
      const key = listenerKey(this.fixed.bind, port);
      specs.push({ key, address: this.fixed.bind, port, kind, tls: null });
      this.fixedKeys.add(key);
    };
    add(this.fixed.httpPort, 'vhost-http');
    this.tls.begin();
    const https = this.httpsSpec([]);
    this.tls.end();
    if (https) {
      specs.push(https);
      this.fixedKeys.add(https.key);
    }
    add(this.fixed.appidPort, 'appid');
    for (const spec of specs) await this.listeners.listen(spec);
    this.tlsRefresh = setInterval(() => this.refreshTls(), TLS_REFRESH_MS);
    this.tlsRefresh.unref();
  }

  /** Certificate files that changed, or TLS labels edited without a listener change, replan the listeners. */
  private refreshTls(): void {
    const changed = this.tls.refresh();
    if (!changed && tlsInputs(this.index.table?.services ?? []) === this.plannedTls) return;
    this.applying = this.applying.then(() => this.reconcileListeners()).then(() => undefined);
  }

  private httpsSpec(services: readonly Service[]): (ListenerSpec & { warnings: LabelWarning[] }) | null {
    if (this.fixed.httpsPort === null) return null;
    const key = listenerKey(this.fixed.bind, this.fixed.httpsPort);
    const plan = this.tls.https(key, services);
    return plan && { key, address: this.fixed.bind, port: this.fixed.httpsPort, kind: 'vhost-https', tls: plan.tls, warnings: plan.warnings };
  }

  current(): RoutingTable | null {
    return this.index.table;
  }

  listenerStatus(): ListenerStatus[] {
    const certificates = this.certificateWarnings;
    const open = this.listeners.specs().map((spec): ListenerStatus => {
      const refused = certificates.get(spec.key);
      return refused ? { key: spec.key, kind: spec.kind, error: null, certificateWarnings: refused.warnings } : { key: spec.key, kind: spec.kind, error: null };
    });
    const failed = [...this.failedListeners.values()].map((e) => ({ key: e.spec.key, kind: e.spec.kind, error: e.message }));
    // A port refused for its certificate is not bound, but not for want of the port: the health check ignores it.
    const closed = [...certificates].filter(([, c]) => !c.open)
      .map(([key, c]): ListenerStatus => ({ key, kind: c.kind, error: c.warnings.map((w) => w.reason).join('; '), certificateWarnings: c.warnings }));
    return [...open, ...failed, ...closed];
  }

  /**
   * Swaps in a new table. The swap itself is one assignment: a request sees either the old or the
   * new table. Listener changes follow; applies are serialised so listeners never race.
   * Resolves with the listeners that newly failed to open.
   */
  apply({ table, services: changed }: TableChange): Promise<ListenFailure[]> {
    this.index.update(table, changed);
    // Counts first, then retirements: an address that moves between services never retires.
    const entered: string[] = [];
    for (const [, now] of changed) {
      for (const b of now?.backends ?? []) {
        const refs = this.addressRefs.get(b.address) ?? 0;
        if (refs === 0) entered.push(b.address);
        this.addressRefs.set(b.address, refs + 1);
      }
    }
    const retired = new Map<string, string>();
    for (const [prev, now] of changed) {
      for (const b of prev?.backends ?? []) {
        const refs = (this.addressRefs.get(b.address) ?? 1) - 1;
        if (refs > 0) this.addressRefs.set(b.address, refs);
        else {
          this.addressRefs.delete(b.address);
          retired.set(b.address, prev!.id);
        }
      }
      this.updateRuntime(prev, now);
    }
    this.retireBackends(retired);
    for (const address of entered) this.restoreBackend(address);
    // Most events change backends only; listeners follow ports, bind addresses and modes.
    // TLS labels and vhosts decide a service port's certificate and the HTTPS listener's SNI names.
    const listenerOf = (x: Service) => `${x.bindAddr ?? ''}|${x.servicePort}|${x.mode}|${x.sslCert ?? ''}|${x.bindOptions ?? ''}|${x.vhosts.join(',')}`;
    if (!changed.some(([prev, now]) => !prev || !now || listenerOf(prev) !== listenerOf(now))) return Promise.resolve([]);
    const applied = this.applying.then(() => this.reconcileListeners());
    this.applying = applied.then(() => undefined);
    return applied.then((failures) => failures.map((f) => ({ key: f.spec.key, reason: f.reason, message: f.message })));
  }

  /** A service added, changed or removed: its balancer state and counters follow it. */
  private updateRuntime(prev: Service | undefined, now: Service | undefined): void {
    if (!now) {
      this.runtimes.delete(prev!.id);
      this.stats.forgetService(prev!.id);
      return;
    }
    const runtime = this.runtimes.get(now.id);
    const counters = runtime?.counters ?? this.stats.service(now.id);
    for (const b of now.backends) this.stats.addBackend(now.id, b.address);
    if (!runtime) {
      this.runtimes.set(now.id, { service: now, routable: routableBackends(now), balancer: new Balancer(now.balance), counters, inFlight: 0 });
      return;
    }
    runtime.service = now;
    runtime.routable = routableBackends(now);
    runtime.balancer.balance = now.balance;
    const kept = new Set(now.backends.map((b) => b.address));
    for (const b of prev?.backends ?? []) if (!kept.has(b.address)) this.stats.forgetBackend(now.id, b.address);
  }

  /** Listeners for the table in force when this runs (a later table may not reconcile itself). */
  private async reconcileListeners(): Promise<ListenError[]> {
    const table = this.index.table;
    const services = table?.services ?? [];
    const specs: ListenerSpec[] = [];
    const certificates = new Map<string, { kind: ListenerSpec['kind']; open: boolean; warnings: LabelWarning[] }>();
    this.plannedTls = tlsInputs(services);
    this.tls.begin();
    for (const s of services) {
      const address = s.bindAddr ?? this.fixed.bind;
      const key = listenerKey(address, s.servicePort);
      const kind = s.mode === 'http' ? 'service-http' : 'service-tcp';
      // Fail closed: a port whose certificate cannot be loaded is not served, rather than served in clear.
      const plan = this.tls.service(key, s);
      if (plan.warnings.length > 0) certificates.set(key, { kind, open: false, warnings: plan.warnings });
      if (!plan.closed) specs.push({ key, address, port: s.servicePort, kind, tls: plan.tls });
    }
    const https = this.httpsSpec(services);
    this.tls.end();
    if (https) specs.push(https);
    if (https && https.warnings.length > 0) certificates.set(https.key, { kind: https.kind, open: true, warnings: https.warnings });
    const known = new Set([...this.certificateWarnings.values()].flatMap((c) => c.warnings.map((w) => `${w.appId}|${w.label}|${w.reason}`)));
    for (const [listener, c] of certificates) {
      for (const w of c.warnings) if (!known.has(`${w.appId}|${w.label}|${w.reason}`)) this.log.error({ listener, appId: w.appId, label: w.label }, w.reason);
    }
    this.certificateWarnings = certificates;
    // reconcile() retries every listener that is not open, so its failures are exactly the ones failing now.
    const failures = await this.listeners.reconcile(specs, (key) => this.fixedKeys.has(key));
    const fresh = failures.filter((f) => !this.failedListeners.has(f.spec.key));
    for (const f of fresh) this.log.error({ listener: f.spec.key, service: this.index.byListener.get(f.spec.key)?.id, reason: f.reason }, f.message);
    this.failedListeners = new Map(failures.map((f) => [f.spec.key, f]));
    if (failures.length > 0) this.retryListenersLater();
    return fresh;
  }

  /** A port held by someone else may be freed: try again without waiting for a Marathon change. */
  private retryListenersLater(): void {
    if (this.listenerRetry) return;
    this.listenerRetry = setTimeout(() => {
      this.listenerRetry = null;
      this.applying = this.applying.then(() => this.reconcileListeners()).then(() => undefined);
    }, LISTENER_RETRY_MS);
    this.listenerRetry.unref();
  }

  /** Backends no service routes to any more: no new work; what they have finishes, then they close. */
  private retireBackends(retired: ReadonlyMap<string, string>): void {
    for (const [address, service] of retired) {
      const poolDone = this.context.upstreams.retire(address);
      if (poolDone) void poolDone.then(this.draining.hold(address, service));
      const streams = this.streams.get(address);
      if (!streams) continue;
      for (const stream of streams.values()) stream.onEnd = this.draining.hold(address, service);
      const timer = setTimeout(() => {
        this.retiredStreams.delete(address);
        if (this.streams.get(address) === streams) this.streams.delete(address);
        for (const stream of streams.values()) stream.close();
      }, this.settings.drainTimeoutMs);
      timer.unref();
      this.retiredStreams.set(address, timer);
    }
  }

  /**
   * A retired address is routed to again (a task back in the table, healthy again): what it still
   * had is no longer drained, so neither it nor the work sent to it from now is cut at the drain
   * timeout, and it is not shown as draining.
   */
  private restoreBackend(address: string): void {
    this.context.upstreams.unretire(address);
    const timer = this.retiredStreams.get(address);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.retiredStreams.delete(address);
      for (const stream of this.streams.get(address)?.values() ?? []) stream.onEnd = null;
    }
    this.draining.forget(address);
  }

  /** Backends that left the table and still have requests or streams on them. */
  drainingBackends(): DrainingBackend[] {
    return this.draining.list();
  }

  setActive(address: string, up: boolean): void {
    this.health.setActive(address, up);
  }

  setRoutable(addresses: readonly string[]): void {
    this.health.setRoutable(addresses);
  }

  downReasons(address: string): string[] {
    return this.health.reasons(address);
  }

  traffic(): StatsSnapshot {
    const inFlight: StatsSnapshot['inFlight'] = {};
    for (const [id, runtime] of this.runtimes) if (runtime.balancer.inFlight.size > 0) inFlight[id] = Object.fromEntries(runtime.balancer.inFlight);
    return this.stats.snapshot(inFlight);
  }

  private trackStream(address: string, close: () => void): () => void {
    let streams = this.streams.get(address);
    if (!streams) {
      streams = new Members();
      this.streams.set(address, streams);
    }
    const stream: TrackedStream = { close, onEnd: null };
    const member = streams.add(stream);
    const owner = streams;
    return () => {
      owner.delete(member);
      stream.onEnd?.();
    };
  }

  private serviceRuntime(service: Service | null | undefined): ServiceRuntime | null {
    return service ? this.runtimes.get(service.id) ?? null : null;
  }

  /** How requests on a listener are routed; one per listener spec, shared by its connections. */
  private site(spec: ListenerSpec): HttpSite {
    let site = this.sites.get(spec);
    if (!site) {
      const notFound = spec.kind === 'appid' ? 'Not Found: no HTTP service for this X-Marathon-App-Id\n' : 'Not Found: no service for this host and path\n';
      site = { key: spec.key, forwarded: Buffer.from(`x-forwarded-proto: ${spec.tls ? 'https' : 'http'}\r\nx-forwarded-port: ${spec.port}\r\n`, 'latin1'), decide: (head, sni) => this.decide(spec, head, sni, notFound) };
      this.sites.set(spec, site);
    }
    return site;
  }

  /** `authority`: the host the request names, or, on the HTTPS listener, its handshake's when it names none (HTTP/1.0). */
  private route(spec: ListenerSpec, head: RequestHead, authority: string): ServiceRuntime | null {
    const index = this.index;
    switch (spec.kind) {
      case 'service-http':
        return this.serviceRuntime(index.byListener.get(spec.key));
      case 'vhost-http':
      case 'vhost-https':
        return this.serviceRuntime(routeVhost(index, authority, head.path));
      case 'appid': {
        const header = field(head, 'x-marathon-app-id');
        return header !== undefined ? this.serviceRuntime(index.byAppId.get(normaliseAppId(header).toLowerCase())) : null;
      }
      default:
        return null;
    }
  }

  private decide(spec: ListenerSpec, head: RequestHead, sni: string | null, notFound: string): ServiceRuntime | LocalResponse {
    // The HTTPS listener serves the host its handshake named (marathon-lb routes :443 by SNI alone):
    // a Host naming another would reach, with another name's handshake, a virtual host whose own
    // name is refused at the handshake (a certificate that failed to load, client verification).
    // An HTTP/1.0 request may name no host: the handshake's name is the one it asks for.
    const authority = spec.kind === 'vhost-https' && head.authority === '' ? sni ?? '' : head.authority;
    if (spec.kind === 'vhost-https' && (sni === null || hostOf(authority) !== sni)) {
      this.stats.clientError(spec.key, 'misdirected');
      return { status: 421, text: 'Misdirected Request: the Host header does not name the host of the TLS handshake (SNI)\n' };
    }
    const runtime = this.route(spec, head, authority);
    if (runtime === null) {
      if (spec.kind !== 'service-http') this.stats.clientError(spec.key, spec.kind === 'appid' ? 'unknown-app-id' : 'unknown-host');
      return { status: 404, text: notFound };
    }
    if (spec.kind === 'vhost-http' && (runtime.service.redirectToHttps || this.index.redirectsToHttps(head.authority))) return redirectToHttps(head, this.fixed.httpsPort ?? 443);
    if (spec.kind === 'vhost-http' || spec.kind === 'vhost-https') {
      // Another app's AUTH on the whole host asks first (its own is checked with its other features).
      for (const guard of this.index.guardsOf(authority) ?? []) {
        const denied = guard === runtime.service ? null : authChallenge(guard, head);
        if (denied !== null) return denied;
      }
    }
    return runtime;
  }

  async stop(drainMs: number): Promise<void> {
    if (this.listenerRetry) clearTimeout(this.listenerRetry);
    if (this.tlsRefresh) clearInterval(this.tlsRefresh);
    await this.listeners.closeAll(drainMs);
    this.context.upstreams.closeAll();
  }
}

/** A draining backend (the old colour of a blue/green deployment) keeps what it has and gets nothing new. */
function routableBackends(service: Service): Backend[] {
  if (service.draining.length === 0) return service.backends;
  const draining = new Set(service.draining);
  return service.backends.filter((b) => !draining.has(b.address));
}
