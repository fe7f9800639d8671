// The only place metric names are declared. Control-plane metrics are prom-client objects (they
// change a few times a second at most); traffic metrics are read at scrape time from StatsSnapshot,
// which the request path fills with plain additions and which workers send to the primary. The
// workers' snapshots are summed by mergeSnapshots (the status page reads the sum too), not by
// prom-client's AggregatorRegistry: bench/metrics-merge measures both, and the sum of snapshots
// scrapes in about half the time without stopping every worker at each scrape.
import client from 'prom-client';
import { DURATION_BUCKETS, STATUS_CLASSES, type StatsSnapshot } from './stats.js';

type MetricType = 'counter' | 'gauge' | 'histogram';
interface Sample { metricName?: string; labels: Record<string, string | number>; value: number }

/**
 * The registry /metrics serves: prom-client metrics, plus metrics whose samples are computed when
 * Prometheus scrapes, written in the text format here, line by line as /metrics sends them (it
 * sends them a slice at a time, src/admin/slices.ts). Through prom-client (AggregatorRegistry.aggregate,
 * a metric object per scrape and a hash per label set) and in one piece, a scrape at 10,000
 * backends held the event loop for 150-500 ms. getMetricsAsJSON and getSingleMetric know the
 * prom-client metrics alone.
 */
export class ScrapingRegistry extends client.Registry {
  private readonly scraped: { name: string; help: string; type: MetricType; samples: () => Iterable<Sample> }[] = [];

  addScraped(name: string, help: string, type: MetricType, samples: () => Iterable<Sample>): void {
    this.scraped.push({ name, help, type, samples });
  }

  /** The scrape-time metrics as they are now, in getMetricsAsJSON's form (what a cluster worker would send for aggregation). */
  scrapedAsJSON(): { name: string; help: string; type: MetricType; aggregator: 'sum'; values: Sample[] }[] {
    return this.scraped.map(({ samples, ...metric }) => ({ ...metric, aggregator: 'sum', values: [...samples()] }));
  }

  /** The whole text, laid out as prom-client lays out its own (a blank line between metrics), in pieces made as they are read. */
  async text(): Promise<Iterable<string>> {
    return this.pieces(await super.metrics());
  }

  private *pieces(own: string): Generator<string> {
    let first = own.trim() === '';
    if (!first) yield own;
    for (const { name, help, type, samples } of this.scraped) {
      yield `${first ? '' : '\n'}# HELP ${name} ${escapeText(help)}\n# TYPE ${name} ${type}\n`;
      first = false;
      for (const { metricName, labels, value } of samples()) {
        let set = '';
        for (const label in labels) set += `${set === '' ? '' : ','}${label}="${escapeLabelValue(String(labels[label]))}"`;
        yield `${metricName ?? name}${set === '' ? '' : `{${set}}`} ${formatValue(value)}\n`;
      }
    }
  }

  override async metrics(): Promise<string> {
    return [...await this.text()].join('');
  }
}

const NEEDS_ESCAPE = /[\\\n"]/;

type BackendCounters = StatsSnapshot['services'][string]['backends'][string];

/** Each backend's counters in a snapshot, with its service: one at a time, as a scrape writes them. */
function* backendCounters(s: StatsSnapshot): Generator<[service: string, backend: string, counters: BackendCounters]> {
  for (const service in s.services) {
    const backends = s.services[service]!.backends;
    for (const backend in backends) yield [service, backend, backends[backend]!];
  }
}

/** A HELP text: backslash and newline escaped. */
function escapeText(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A label value: as a HELP text, and its double quotes too. */
function escapeLabelValue(value: string): string {
  return NEEDS_ESCAPE.test(value) ? escapeText(value).replace(/"/g, '\\"') : value;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  return value === -Infinity ? '-Inf' : String(value);
}

/** A backend's state as the balancer sees it; `reasons` say what takes it out of rotation. */
export interface BackendState {
  service: string;
  backend: string;
  reasons: string[];
}

/**
 * The states with one entry per service and backend, its reasons together: a backend can be in the
 * table's excluded tasks and draining at once (Marathon called it unhealthy with a request on it),
 * and a series repeated in one scrape is refused by Prometheus.
 */
function oneStatePerBackend(states: BackendState[]): BackendState[] {
  const byKey = new Map<string, BackendState>();
  for (const state of states) {
    const key = `${state.service}\0${state.backend}`;
    const seen = byKey.get(key);
    if (seen === undefined) byKey.set(key, state);
    else byKey.set(key, { ...seen, reasons: [...new Set([...seen.reasons, ...state.reasons])] });
  }
  return byKey.size === states.length ? states : [...byKey.values()];
}

/** A service's ejection cap and panic state, as the primary decided them (health/ejection-limits.ts). */
export interface ServiceLimitState {
  service: string;
  capped: boolean;
  panic: boolean;
}

export interface MetricSources {
  traffic(): StatsSnapshot;
  backends(): BackendState[];
  /** Services where a backend is out; others are neither capped nor in panic. */
  ejection(): readonly ServiceLimitState[];
  /** Every listener Turbine should have open, and whether it is. */
  listeners(): readonly { key: string; kind: string; error: string | null }[];
  /** Worker processes (--workers > 1); the primary's own are nodejs_* and process_*. */
  workers(): readonly { pid: number; cpuSeconds: number; residentBytes: number; eventLoopLagSeconds: number }[];
  /** Workers started in place of ones that died. */
  workerRestarts(): number;
}

export class Metrics {
  readonly registry = new ScrapingRegistry();

  readonly marathonEvents = this.counter('turbine_marathon_events_total', 'Marathon events received, by type.', ['type']);
  readonly marathonMalformed = this.counter('turbine_marathon_malformed_total',
    'Marathon input skipped because it was malformed, by what it was (event, app, task).', ['what']);
  readonly marathonStaleEvents = this.counter('turbine_marathon_stale_events_total',
    'Task events ignored because a newer or terminal state of the task was already known.', []);
  readonly marathonReconnects = this.counter('turbine_marathon_stream_reconnects_total',
    'Event stream reconnections, by the reason the previous stream ended.', ['reason']);
  readonly marathonResyncs = this.counter('turbine_marathon_resyncs_total',
    'Refetches from Marathon, by scope (full, app) and result (ok, error).', ['scope', 'result']);
  readonly marathonFetchDuration = new client.Histogram({
    name: 'turbine_marathon_fetch_duration_seconds', help: 'Duration of REST calls to Marathon, by scope.',
    labelNames: ['scope'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly marathonLastSync = this.gauge('turbine_marathon_last_sync_timestamp_seconds',
    'Unix time of the last successful full sync with Marathon.', []);
  readonly marathonConnected = this.gauge('turbine_marathon_stream_connected', '1 while the event stream is open.', []);
  readonly marathonUrl = this.gauge('turbine_marathon_url_info', 'The Marathon URL in use (value 1).', ['url']);

  readonly tableGeneration = this.gauge('turbine_routing_table_generation', 'Generation of the routing table serving traffic.', []);
  readonly tableApps = this.gauge('turbine_routing_apps', 'Apps known from Marathon.', []);
  readonly tableServices = this.gauge('turbine_routing_services', 'Services in the routing table.', []);
  readonly tableBackends = this.gauge('turbine_routing_backends', 'Backends in the routing table.', []);
  readonly labelWarnings = this.gauge('turbine_routing_label_warnings',
    'Labels ignored or ports skipped while building the current table.', []);
  readonly convergence = new client.Histogram({
    name: 'turbine_routing_convergence_seconds',
    help: 'Time from a Marathon event arriving to the new routing table serving traffic.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly stateFileErrors = this.counter('turbine_state_file_errors_total',
    'State file reads that were refused (corrupt, unreadable, an older format) or writes that failed, by op.', ['op']);
  readonly listenerErrors = this.counter('turbine_listener_errors_total',
    'Listeners that could not be opened, by reason (in-use, privileged, other).', ['reason']);
  constructor(sources: MetricSources, options: { defaultMetrics: boolean } = { defaultMetrics: true }) {
    if (options.defaultMetrics) {
      client.collectDefaultMetrics({ register: this.registry });
      // prom-client names these gauges *_total, which promtool rejects (a _total suffix means a
      // counter); the same information is in nodejs_active_{handles,requests,resources}.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
        this.registry.removeSingleMetric(name);
      }
    }
    const addScraped = this.registry.addScraped.bind(this.registry);
    const add = (name: string, help: string, type: MetricType, samples: (s: StatsSnapshot) => Iterable<Sample>) =>
      addScraped(name, help, type, () => samples(sources.traffic()));
    const addBackends = (name: string, help: string, samples: (states: BackendState[]) => Iterable<Sample>) =>
      addScraped(name, help, 'gauge', () => samples(oneStatePerBackend(sources.backends())));

    // The metrics with a sample per backend are generators: a scrape writes them a slice at a time.
    addBackends('turbine_backend_up', '1 when no reason takes a backend out, 0 when one does (see turbine_backend_down_reason; in panic or over the ejection cap it gets traffic anyway).', function* (states): Generator<Sample> {
      for (const b of states) yield { labels: { service: b.service, backend: b.backend }, value: b.reasons.length === 0 ? 1 : 0 };
    });
    addBackends('turbine_backend_down_reason',
      '1 for each reason a backend gets no new traffic: marathon-health, not-ready, active-check, ejected, draining.', function* (states): Generator<Sample> {
        for (const b of states) for (const reason of b.reasons) yield { labels: { service: b.service, backend: b.backend, reason }, value: 1 };
      });

    const addLimits = (name: string, help: string, value: (s: ServiceLimitState) => boolean) =>
      addScraped(name, help, 'gauge', () => sources.ejection().map((s) => ({ labels: { service: s.service }, value: value(s) ? 1 : 0 })));
    addLimits('turbine_service_panic', '1 while a service is in panic: too few backends up, so every backend gets traffic.', (s) => s.panic);
    addLimits('turbine_service_ejection_capped',
      '1 while more backends of a service failed than --max-ejection-percent lets out; the excess still gets traffic.', (s) => s.capped);

    addScraped('turbine_listener_up', '1 when a listener Turbine should serve is bound, 0 while it cannot be (the health check says 503).', 'gauge', () =>
      sources.listeners().map((l) => ({ labels: { listener: l.key, kind: l.kind }, value: l.error === null ? 1 : 0 })));
    addScraped('turbine_worker_cpu_seconds_total', 'CPU time (user and system) of each proxy worker process.', 'counter', () =>
      sources.workers().map((w) => ({ labels: { worker: String(w.pid) }, value: w.cpuSeconds })));
    addScraped('turbine_worker_restarts_total', 'Proxy workers started in place of ones that died (at once, then later and later while they keep dying young).', 'counter', () =>
      [{ labels: {}, value: sources.workerRestarts() }]);
    addScraped('turbine_worker_resident_memory_bytes', 'Resident memory of each proxy worker process.', 'gauge', () =>
      sources.workers().map((w) => ({ labels: { worker: String(w.pid) }, value: w.residentBytes })));
    addScraped('turbine_worker_event_loop_lag_seconds', "99th percentile event-loop delay of each proxy worker over its last report (0.5 s).", 'gauge', () =>
      sources.workers().map((w) => ({ labels: { worker: String(w.pid) }, value: w.eventLoopLagSeconds })));

    add('turbine_requests_total', 'HTTP requests forwarded, by service, backend and status class.', 'counter', function* (s): Generator<Sample> {
      for (const [service, backend, counters] of backendCounters(s)) {
        for (let i = 0; i < STATUS_CLASSES.length; i += 1) {
          const n = counters.responses[i]!;
          if (n > 0) yield { labels: { service, backend, code: STATUS_CLASSES[i]! }, value: n };
        }
      }
    });
    add('turbine_tcp_connections_total', 'TCP connections forwarded, by service and backend.', 'counter', function* (s): Generator<Sample> {
      for (const [service, backend, counters] of backendCounters(s)) {
        if (counters.tcpConnections > 0) yield { labels: { service, backend }, value: counters.tcpConnections };
      }
    });
    add('turbine_received_bytes_total', 'Bytes received from clients, by service.', 'counter', (s) =>
      Object.entries(s.services).map(([service, c]) => ({ labels: { service }, value: c.receivedBytes })));
    add('turbine_sent_bytes_total', 'Bytes sent to clients, by service.', 'counter', (s) =>
      Object.entries(s.services).map(([service, c]) => ({ labels: { service }, value: c.sentBytes })));
    add('turbine_errors_total', 'Proxy failures by service and kind (connect, timeout, reset, bad-response, no-backend, maxconn).', 'counter', (s) =>
      Object.entries(s.services).flatMap(([service, c]) =>
        Object.entries(c.errors).map(([kind, n]) => ({ labels: { service, kind }, value: n ?? 0 }))));
    add('turbine_request_duration_seconds', 'Time from a request to the end of its response, by service.', 'histogram', function* (s): Generator<Sample> {
      for (const service in s.services) {
        const c = s.services[service]!;
        let cumulative = 0;
        for (let i = 0; i < c.durationBuckets.length; i += 1) {
          cumulative += c.durationBuckets[i]!;
          const le = i < DURATION_BUCKETS.length ? DURATION_BUCKETS[i]! : '+Inf';
          yield { metricName: 'turbine_request_duration_seconds_bucket', labels: { service, le }, value: cumulative };
        }
        yield { metricName: 'turbine_request_duration_seconds_sum', labels: { service }, value: c.durationSum };
        yield { metricName: 'turbine_request_duration_seconds_count', labels: { service }, value: c.durationCount };
      }
    });
    add('turbine_active_connections', 'Client connections open, by listener.', 'gauge', (s) =>
      Object.entries(s.activeConnections).map(([listener, n]) => ({ labels: { listener }, value: n })));
    add('turbine_client_errors_total',
      'Client requests refused before routing, by listener and reason (bad-request, header-timeout, client-timeout, aborted, ...).', 'counter', (s) =>
        Object.entries(s.clientErrors).map(([key, n]) => {
          const [listener, reason] = key.split('|');
          return { labels: { listener: listener!, reason: reason! }, value: n };
        }));
    add('turbine_tls_certificate_errors_total',
      'Certificate file loads that failed, by file and reason (unreadable, invalid), in every proxy process; a reload that fails keeps the last good certificate.', 'counter', (s) =>
        Object.entries(s.certificateErrors ?? {}).map(([key, n]) => {
          const at = key.lastIndexOf('|');
          return { labels: { certificate: key.slice(0, at), reason: key.slice(at + 1) }, value: n };
        }));
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]) {
    return new client.Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge<L extends string>(name: string, help: string, labelNames: L[]) {
    return new client.Gauge<L>({ name, help, labelNames, registers: [this.registry] });
  }
}
