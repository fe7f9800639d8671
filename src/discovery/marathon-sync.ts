// Keeps the AppStore in step with Marathon: a full resync on every (re)connect of the event stream,
// task and health events applied at once, app-definition changes refetched (debounced, coalesced),
// reconnects with capped exponential backoff over the Marathon URLs. Errors are logged once per
// change of state, not per retry; the store is never emptied because Marathon is unreachable.
// A stream that keeps opening and dropping (a proxy in front of Marathon cutting it) reconnects
// at once each time, but its full resyncs are spaced out, the space doubling up to the backoff's
// cap: each is a whole /v2/apps, and four a second would load Marathon more than anything else.
// A full resync also runs every --resync-interval, events or not (an event Marathon lost is
// otherwise missed until the stream reopens, which may be never), and, while the stream cannot
// open, at each reconnect once the last one is older than the backoff's cap.
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { MarathonClient, MarathonError } from '../marathon/client.js';
import { openEventStream, type EventStreamHandle, type StreamEndReason } from '../marathon/events.js';
import { MalformedEvent, decodeEvent, skippedApps, splitEventData, type DecodeProblem, type MarathonEvent } from '../marathon/decode.js';
import { AppStore } from './app-store.js';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

export interface SyncStatus {
  state: ConnectionState;
  url: string;
  synced: boolean;
  lastSyncAt: number | null;
  lastEventAt: number | null;
  lastError: string | null;
  events: number;
}

export interface MarathonSyncOptions {
  client: MarathonClient;
  store: AppStore;
  logger: Logger;
  metrics: Metrics;
  stallTimeoutMs: number;
  /** A full resync at least this often. */
  resyncIntervalMs: number;
  /** Called after the store changed; `arrivedAt` is when the causing input arrived (performance.now()). */
  onChange(arrivedAt: number): void;
  /** Called after each successful full sync (to save the state file). */
  onFullSync?(): void;
  /** Called after each failed full sync (to fall back on the state file at start). */
  onFullSyncFailed?(): void;
  backoff?: { initialMs: number; maxMs: number };
  refetchDelayMs?: number;
  readinessPollMs?: number;
}

/** More app ids than this in one debounce window: one full resync is cheaper than many app fetches. */
const MAX_APP_REFETCHES = 16;
/** How often an app with a task waiting on its readiness check is fetched again: no event says a check passed. */
const READINESS_POLL_MS = 2000;

export class MarathonSync {
  private stream: EventStreamHandle | null = null;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private resyncTimer: NodeJS.Timeout | null = null;
  private refetchTimer: NodeJS.Timeout | null = null;
  private readinessTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  /** Full resyncs failed in a row: the retry waits longer each time, up to the backoff's cap. */
  private syncFailures = 0;
  /** When the last full resync succeeded (performance.now()). */
  private lastFullSyncAt = -Infinity;
  /** When the stream last opened, when its last opening resync ran (performance.now()), and how long the next one waits after that. */
  private lastOpenAt = -Infinity;
  private lastOpenResyncAt = -Infinity;
  private openResyncGapMs = 0;
  private openResyncTimer: NodeJS.Timeout | null = null;
  private resyncing: MarathonEvent[] | null = null;
  /** A full resync was asked for while one was in flight: another starts when it is done (its snapshot may predate the ask). */
  private resyncAgain = false;
  /** Apps being refetched, with the events about them that arrived meanwhile: replayed on the answer, as a full resync replays its own. */
  private readonly refetching = new Map<string, MarathonEvent[]>();
  private pendingApps = new Set<string>();
  private pendingFull = false;
  private readonly log: Logger;
  private readonly status: SyncStatus;
  /** What each source (stream, sync) last logged as failing: a retry that fails the same way is not logged again. */
  private readonly loggedErrors = new Map<'stream' | 'sync', string>();

  constructor(private readonly options: MarathonSyncOptions) {
    this.log = options.logger.child({ component: 'marathon' });
    this.status = { state: 'connecting', url: options.client.url, synced: false, lastSyncAt: null, lastEventAt: null, lastError: null, events: 0 };
  }

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    for (const t of [this.reconnectTimer, this.resyncTimer, this.refetchTimer, this.readinessTimer, this.openResyncTimer]) if (t) clearTimeout(t);
    this.stream?.close();
  }

  getStatus(): Readonly<SyncStatus> {
    return this.status;
  }

  /** A full refetch now (SIGHUP, /_mlb_signal/hup), whether or not the stream is up. */
  requestResync(): Promise<void> {
    return this.resync();
  }

  private connect(): void {
    if (this.stopped) return;
    this.setState('connecting', null);
    // Routing must not wait for the stream: fetch now too, so a broken /v2/events still serves, and
    // keeps being fetched while the stream keeps failing to open (`attempt` counts those failures).
    const { maxMs } = this.options.backoff ?? { maxMs: 30_000 };
    if (!this.status.synced || (this.attempt > 0 && performance.now() - this.lastFullSyncAt >= maxMs)) void this.resync();
    // A DC/OS token is fetched first: a stream opened without one would only collect a 401.
    this.options.client.streamHeaders().then((headers) => this.openStream(headers),
      (err: Error) => this.onStreamEnd('error', `authorization: ${err.message}`));
  }

  private openStream(headers: Record<string, string>): void {
    if (this.stopped) return;
    const { client } = this.options;
    this.stream = openEventStream({
      baseUrl: client.url,
      headers,
      dispatcher: client.dispatcher,
      stallTimeoutMs: this.options.stallTimeoutMs,
      onOpen: () => {
        this.setState('connected', null);
        this.options.metrics.marathonConnected.set(1);
        this.resyncOnOpen();
      },
      onEvent: (type, data) => this.onRawEvent(type, data),
      onEnd: (reason, detail) => this.onStreamEnd(reason, detail),
    });
  }

  /**
   * The resync that follows a stream's opening: now, unless the last one ran less than the gap
   * ago, then when the gap is over (one waits for all the openings meanwhile; their events are
   * applied as they come). The gap doubles from a second at each of these resyncs, up to the
   * backoff's cap, and is gone once the stream has stayed open that long.
   */
  private resyncOnOpen(): void {
    const now = performance.now();
    const { maxMs } = this.options.backoff ?? { maxMs: 30_000 };
    if (now - this.lastOpenAt >= maxMs) this.openResyncGapMs = 0;
    this.lastOpenAt = now;
    if (this.openResyncTimer !== null) return;
    const wait = this.lastOpenResyncAt + this.openResyncGapMs - now;
    if (wait > 0) {
      this.log.warn({ url: this.options.client.url, waitMs: Math.round(wait) }, 'event stream reopened soon after the last resync; the full resync waits');
      this.openResyncTimer = setTimeout(() => {
        this.openResyncTimer = null;
        this.runOpenResync();
      }, wait);
      return;
    }
    this.runOpenResync();
  }

  private runOpenResync(): void {
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 250, maxMs: 30_000 };
    this.openResyncGapMs = Math.min(maxMs, Math.max(initialMs * 4, this.openResyncGapMs * 2));
    this.lastOpenResyncAt = performance.now();
    void this.resync();
  }

  private onStreamEnd(reason: StreamEndReason, detail: string): void {
    this.options.metrics.marathonConnected.set(0);
    this.stream = null;
    if (this.stopped) return;
    this.options.metrics.marathonReconnects.inc({ reason });
    if (reason === 'http-status' && detail.startsWith('HTTP 401')) this.options.client.authRefused();
    const wasConnected = this.status.state === 'connected';
    this.setState('disconnected', { kind: reason, message: `event stream from ${this.options.client.url}: ${reason}: ${detail}` }, reason === 'dropped' ? 'warn' : 'error');
    if (!wasConnected) this.options.client.rotate();
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 250, maxMs: 30_000 };
    const delay = wasConnected ? initialMs : Math.min(maxMs, initialMs * 2 ** this.attempt);
    this.attempt = wasConnected ? 0 : this.attempt + 1;
    this.reconnectTimer = setTimeout(() => this.connect(), delay * (0.75 + Math.random() * 0.5));
  }

  private onRawEvent(sseType: string, data: string): void {
    const arrivedAt = performance.now();
    this.status.lastEventAt = Date.now();
    for (const doc of splitEventData(data)) {
      let event: MarathonEvent;
      try {
        event = decodeEvent(JSON.parse(doc), sseType);
      } catch (err) {
        this.options.metrics.marathonMalformed.inc({ what: 'event' });
        this.log.warn({ eventType: sseType, err: (err as Error).message, data: doc.slice(0, 200) },
          err instanceof MalformedEvent ? 'malformed Marathon event skipped' : 'Marathon event is not JSON; skipped');
        // What the event would have said is fetched instead, when it named its app.
        if (err instanceof MalformedEvent && err.appId !== null) this.scheduleRefetch([err.appId]);
        continue;
      }
      this.status.events += 1;
      this.options.metrics.marathonEvents.inc({ type: event.type === 'ignored' ? event.cause : sseType });
      if (this.resyncing) this.resyncing.push(event);
      if ('appId' in event) this.refetching.get(event.appId)?.push(event);
      if (this.apply(event)) this.options.onChange(arrivedAt);
    }
  }

  /**
   * Applies one event to the store; true when routing may have changed. An event replayed after a
   * full sync was counted when it arrived, so `replayed` keeps it out of the stale count.
   */
  private apply(event: MarathonEvent, replayed = false): boolean {
    const { store } = this.options;
    switch (event.type) {
      case 'status_update_event': {
        const result = store.applyTaskStatus(event);
        if (result === 'stale' && !replayed) this.options.metrics.marathonStaleEvents.inc();
        if (result === 'unknown-app') this.scheduleRefetch([event.appId]);
        if (result === 'changed') this.log.debug({ appId: event.appId, taskId: event.taskId, state: event.state }, 'task state applied');
        // A new task's readiness is only in the app, and a rolling upgrade kills an old task when a new one
        // became ready: either way the app is fetched now, not at the next poll.
        if (result === 'changed' && this.waitingForReadiness(event.appId)) this.scheduleRefetch([event.appId]);
        return result === 'changed';
      }
      case 'health_status_changed_event': {
        const result = store.applyHealth(event);
        if (result === 'unknown-app' || result === 'unknown-task' || result === 'refetch') this.scheduleRefetch([event.appId]);
        return result === 'changed';
      }
      case 'app_terminated_event':
        return store.removeApp(event.appId);
      case 'app_changed':
        this.scheduleRefetch(event.appIds);
        return false;
      case 'ignored':
        return false;
    }
  }

  private scheduleRefetch(appIds: readonly string[]): void {
    if (appIds.length === 0) this.pendingFull = true;
    for (const id of appIds) this.pendingApps.add(id);
    if (this.refetchTimer || this.stopped) return;
    this.refetchTimer = setTimeout(() => {
      this.refetchTimer = null;
      void this.flushRefetch();
    }, this.options.refetchDelayMs ?? 50);
  }

  private async flushRefetch(): Promise<void> {
    const ids = [...this.pendingApps];
    const full = this.pendingFull || ids.length > MAX_APP_REFETCHES;
    this.pendingApps.clear();
    this.pendingFull = false;
    // After a failed full resync its retry is the next one (at the backoff's pace): asking again
    // now (a failed app fetch, a readiness poll) would fetch /v2/apps every few seconds regardless.
    if (full) return this.syncFailures > 0 ? undefined : this.resync();
    const arrivedAt = performance.now();
    const results = await Promise.allSettled(ids.map(async (id) => {
      const end = this.options.metrics.marathonFetchDuration.startTimer({ scope: 'app' });
      const meanwhile: MarathonEvent[] = [];
      this.refetching.set(id, meanwhile);
      try {
        const { app, problems } = await this.options.client.fetchApp(id);
        this.reportProblems(problems);
        let changed = app ? this.options.store.upsertApp(app) : this.options.store.removeApp(id);
        // The answer may predate events that came during the fetch: they go on top of it.
        for (const event of meanwhile) changed = this.apply(event, true) || changed;
        return changed;
      } finally {
        if (this.refetching.get(id) === meanwhile) this.refetching.delete(id);
        end();
      }
    }));
    let changed = false;
    for (const [i, r] of results.entries()) {
      this.options.metrics.marathonResyncs.inc({ scope: 'app', result: r.status === 'fulfilled' ? 'ok' : 'error' });
      if (r.status === 'fulfilled') changed ||= r.value;
      else if (r.reason instanceof MarathonError && r.reason.kind === 'malformed') {
        // /v2/apps reads apps the same way and would not read this one either: it keeps its last good version.
        this.options.metrics.marathonMalformed.inc({ what: 'app' });
        this.log.warn({ appId: ids[i], err: r.reason.message }, 'app refetch unreadable; its last good version is kept');
      } else {
        this.log.warn({ appId: ids[i], err: (r.reason as Error).message }, 'app refetch failed; full resync scheduled');
        this.pendingFull = true;
      }
    }
    if (this.pendingFull) this.scheduleRefetch([]);
    if (changed) this.options.onChange(arrivedAt);
    this.pollReadiness();
  }

  private waitingForReadiness(appId: string): boolean {
    return this.options.store.awaitingReadiness().has(appId);
  }

  /** While a task waits on its readiness check, its app is fetched again every READINESS_POLL_MS. */
  private pollReadiness(): void {
    if (this.readinessTimer || this.stopped || this.options.store.awaitingReadiness().size === 0) return;
    this.readinessTimer = setTimeout(() => {
      this.readinessTimer = null;
      const ids = [...this.options.store.awaitingReadiness()];
      if (ids.length > 0) this.scheduleRefetch(ids);
    }, this.options.readinessPollMs ?? READINESS_POLL_MS);
  }

  private async resync(): Promise<void> {
    if (this.stopped) return;
    if (this.resyncing) {
      // One is in flight; events meanwhile are replayed after it, but a change Marathon made before
      // this ask and after that fetch began (while the stream was down) is seen only by another.
      this.resyncAgain = true;
      return;
    }
    this.resyncing = [];
    this.resyncAgain = false;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    const end = this.options.metrics.marathonFetchDuration.startTimer({ scope: 'full' });
    const arrivedAt = performance.now();
    try {
      const { apps, problems } = await this.options.client.fetchApps();
      end();
      this.reportProblems(problems);
      const replay = this.resyncing;
      this.resyncing = null;
      this.options.store.replaceAll(apps, skippedApps(problems));
      for (const event of replay) this.apply(event, true);
      this.status.synced = true;
      this.status.lastSyncAt = Date.now();
      this.syncFailures = 0;
      this.lastFullSyncAt = performance.now();
      // A fetch that was in flight at stop() lands after it: it must not leave a timer behind.
      if (!this.stopped) this.resyncTimer = setTimeout(() => void this.resync(), this.options.resyncIntervalMs);
      this.status.url = this.options.client.url;
      this.options.metrics.marathonResyncs.inc({ scope: 'full', result: 'ok' });
      this.loggedErrors.delete('sync');
      this.options.metrics.marathonLastSync.set(Date.now() / 1000);
      this.options.metrics.marathonUrl.reset();
      this.options.metrics.marathonUrl.set({ url: this.options.client.url }, 1);
      if (this.status.state === 'connected') this.setState('connected', null);
      this.log.info({ apps: apps.length, url: this.options.client.url }, 'full sync with Marathon');
      this.options.onChange(arrivedAt);
      this.options.onFullSync?.();
      this.pollReadiness();
      if (this.resyncAgain) void this.resync();
    } catch (err) {
      end();
      this.resyncing = null;
      this.options.metrics.marathonResyncs.inc({ scope: 'full', result: 'error' });
      const message = err instanceof MarathonError ? `${err.kind}: ${err.message}` : (err as Error).message;
      this.status.lastError = message;
      this.logErrorOnce('sync', err instanceof MarathonError ? err.kind : 'error', `full sync failed; ${this.status.synced ? 'serving the last good routing table' : 'no routing table from Marathon yet'}: ${message}`);
      const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 250, maxMs: 30_000 };
      this.resyncAgain = false; // the retry below starts after the ask
      this.syncFailures += 1;
      if (!this.stopped) this.resyncTimer = setTimeout(() => void this.resync(), Math.min(maxMs, initialMs * 8 * 2 ** Math.min(this.syncFailures - 1, 20)));
      this.options.onFullSyncFailed?.();
    }
  }

  private reportProblems(problems: readonly DecodeProblem[]): void {
    for (const p of problems) {
      this.options.metrics.marathonMalformed.inc({ what: p.what });
      this.log.warn({ appId: p.what === 'app' || p.what === 'label' || p.what === 'readiness' ? p.id : undefined, taskId: p.what === 'task' ? p.id : undefined, reason: p.reason }, `malformed Marathon ${p.what} skipped`);
    }
  }

  /** `level`: a dropped stream that reconnects at once is a warning; failing to connect is an error. */
  private setState(state: ConnectionState, error: { kind: string; message: string } | null, level: 'warn' | 'error' = 'error'): void {
    const changed = state !== this.status.state;
    this.status.state = state;
    if (error) {
      this.status.lastError = error.message;
      this.logErrorOnce('stream', error.kind, error.message, level);
    } else if (changed) {
      if (state === 'connected') this.loggedErrors.delete('stream');
      // Each attempt while Marathon is down goes through 'connecting': a line per retry belongs at debug.
      this.log[state === 'connecting' ? 'debug' : 'info']({ state, url: this.options.client.url }, `Marathon event stream ${state}`);
    }
  }

  /** Keyed by the kind of failure, not its text: URLs, ports and timings differ between retries. */
  private logErrorOnce(source: 'stream' | 'sync', kind: string, message: string, level: 'warn' | 'error' = 'error'): void {
    if (this.loggedErrors.get(source) === kind) return;
    this.loggedErrors.set(source, kind);
    this.log[level]({ url: this.options.client.url, source, kind }, message);
  }
}
