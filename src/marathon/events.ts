// Marathon's event stream (SSE on /v2/events) through the eventsource package. One call opens one
// connection; the caller decides about reconnecting, so that every reconnect is followed by a
// full resync and follows the caller's backoff and URL failover.
import { EventSource, type FetchLikeResponse } from 'eventsource';
import { fetch, type Dispatcher } from 'undici';
import { marathonUrl } from './client.js';
import { SUBSCRIBED_EVENTS } from './decode.js';

/** dropped: an open stream was cut by the network or Marathon (a restart, a proxy's idle timeout). */
export type StreamEndReason = 'error' | 'dropped' | 'stall' | 'closed' | 'http-status';

export interface EventStreamOptions {
  baseUrl: string;
  headers: Record<string, string>;
  dispatcher: Dispatcher;
  /** No byte for this long (Marathon sends no heartbeat) means the connection is dead. */
  stallTimeoutMs: number;
  onOpen(): void;
  /** One SSE event: its `event:` type and its raw `data`. */
  onEvent(type: string, data: string): void;
  onEnd(reason: StreamEndReason, detail: string): void;
}

export interface EventStreamHandle {
  close(): void;
}

const MAX_REDIRECTS = 5;

export function eventsUrl(baseUrl: string): URL {
  const url = marathonUrl(baseUrl, '/v2/events');
  url.searchParams.set('plan-format', 'light');
  for (const type of [...SUBSCRIBED_EVENTS, 'event_stream_attached']) url.searchParams.append('event_type', type);
  return url;
}

export function openEventStream(options: EventStreamOptions): EventStreamHandle {
  let lastByteAt = Date.now();
  let ended = false;
  let opened = false;
  let es: EventSource | null = null;

  const end = (reason: StreamEndReason, detail: string) => {
    if (ended) return;
    ended = true;
    clearInterval(stallTimer);
    es?.close();
    options.onEnd(reason, detail);
  };

  // A non-leader Marathon redirects /v2/events to the leader. fetch drops Authorization on a
  // cross-origin redirect, so redirects are followed here, keeping our headers.
  const sseFetch = async (input: string | URL, init: { headers: Record<string, string>; signal: unknown }): Promise<FetchLikeResponse> => {
    let url = new URL(String(input));
    for (let hop = 0; ; hop += 1) {
      const response = await fetch(url, {
        headers: { ...init.headers, ...options.headers },
        signal: init.signal as AbortSignal,
        redirect: 'manual',
        dispatcher: options.dispatcher,
      });
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location && hop < MAX_REDIRECTS) {
        await response.body?.cancel();
        url = new URL(location, url);
        continue;
      }
      if (response.status !== 200) {
        await response.body?.cancel();
        queueMicrotask(() => end('http-status', `HTTP ${response.status} from ${url.origin}`));
        return response as unknown as FetchLikeResponse;
      }
      lastByteAt = Date.now();
      const source = response.body;
      // Every chunk read proves the connection alive; a silent one is caught by the stall timer.
      const counted = source ? {
        getReader() {
          const reader = source.getReader();
          return {
            async read() {
              const result = await reader.read();
              lastByteAt = Date.now();
              return result;
            },
            cancel: () => reader.cancel(),
          };
        },
      } : null;
      return { body: counted, url: url.href, status: response.status, redirected: hop > 0, headers: response.headers };
    }
  };

  const stallTimer = setInterval(() => {
    if (Date.now() - lastByteAt > options.stallTimeoutMs) end('stall', `no byte for ${options.stallTimeoutMs} ms`);
  }, Math.max(10, Math.min(options.stallTimeoutMs / 4, 5000)));
  stallTimer.unref();

  try {
    es = new EventSource(eventsUrl(options.baseUrl), { fetch: sseFetch as never });
  } catch (err) {
    queueMicrotask(() => end('error', (err as Error).message));
    return { close: () => end('closed', 'closed before opening') };
  }
  es.addEventListener('open', () => {
    opened = true;
    if (!ended) options.onOpen();
  });
  es.addEventListener('error', (event) => {
    // eventsource would reconnect on its own; the caller reconnects instead, then resyncs.
    // undici reports a body cut short as "TypeError: terminated": say what happened instead.
    const message = (event as { message?: string }).message;
    if (opened) end('dropped', `the connection was closed${message && !/terminated/.test(message) ? ` (${message})` : ''}`);
    else end('error', message ?? 'stream error');
  });
  const forward = (event: MessageEvent) => {
    if (!ended) options.onEvent(event.type, typeof event.data === 'string' ? event.data : '');
  };
  for (const type of [...SUBSCRIBED_EVENTS, 'event_stream_attached', 'message']) es.addEventListener(type, forward);
  return { close: () => end('closed', 'closed by Turbine') };
}
