// Marathon REST: the only module (with events.ts) that speaks HTTP to Marathon. Fails over across
// the configured URLs in order and remembers the one that answered.
import { readFileSync } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';
import type { TokenAuthorization } from './dcos-auth.js';
import { decodeApp, decodeAppList, type DecodeProblem, type MarathonApp } from './decode.js';

export type MarathonErrorKind = 'unreachable' | 'auth' | 'server' | 'malformed' | 'not-found';

export class MarathonError extends Error {
  override readonly name = 'MarathonError';
  constructor(readonly kind: MarathonErrorKind, message: string, readonly url: string | null = null) {
    super(message);
  }
}

export interface MarathonClientOptions {
  urls: readonly string[];
  /** Value of the Authorization header, a token source (DC/OS login), or null. */
  authorization: string | TokenAuthorization | null;
  caCertFile: string | null;
  timeoutMs: number;
}

export function basicAuthorization(credentials: string | null): string | null {
  return credentials ? 'Basic ' + Buffer.from(credentials.trim()).toString('base64') : null;
}

/** `path` (with its query) under the base URL, which may itself have a path prefix. */
export function marathonUrl(base: string, path: string): URL {
  const parsed = new URL(base);
  return new URL(parsed.pathname.replace(/\/$/, '') + path, parsed.origin);
}

export interface FetchedApps {
  apps: MarathonApp[];
  problems: DecodeProblem[];
}

export class MarathonClient {
  private current = 0;
  /** REST requests: a body that stops arriving for timeoutMs fails the request. */
  private readonly rest: Dispatcher;
  /**
   * The event stream's: no body timeout, since a quiet cluster sends nothing for minutes and only
   * the stream's own stall timeout (--event-stall-timeout) may declare it dead.
   */
  readonly dispatcher: Dispatcher;

  constructor(private readonly options: MarathonClientOptions) {
    if (options.urls.length === 0) throw new Error('no Marathon URL');
    const ca = options.caCertFile ? readFileSync(options.caCertFile) : undefined;
    const connect = { timeout: options.timeoutMs, ...(ca ? { ca } : {}) };
    this.rest = new Agent({ connect, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs });
    this.dispatcher = new Agent({ connect, headersTimeout: options.timeoutMs, bodyTimeout: 0 });
  }

  /** The URL that answered last (the first one until one did). */
  get url(): string {
    return this.options.urls[this.current]!;
  }

  /** Moves on to the next URL, for callers (the event stream) that found the current one dead. */
  rotate(): void {
    this.current = (this.current + 1) % this.options.urls.length;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const auth = this.options.authorization;
    // Logins go on the REST agent: bounded by the REST timeout (30 s), where the stream's agent waits on
    // a body for ever, and a login that stalled there held every Marathon request behind it.
    const value = typeof auth === 'string' ? auth : auth?.current(this.rest) ?? null;
    return value ? { authorization: value, ...extra } : extra;
  }

  /** Headers for the event stream: with a DC/OS account, only once a token is at hand. */
  async streamHeaders(): Promise<Record<string, string>> {
    const auth = this.options.authorization;
    if (typeof auth === 'object' && auth !== null) await auth.header(this.rest);
    return this.headers();
  }

  /** Marathon refused the stream's credentials: a token is renewed before the next connect. */
  authRefused(): void {
    const auth = this.options.authorization;
    if (typeof auth === 'object' && auth !== null) auth.invalidate();
  }

  async fetchApps(): Promise<FetchedApps> {
    const body = await this.getJson('/v2/apps?embed=apps.tasks&embed=apps.readiness');
    const problems: DecodeProblem[] = [];
    try {
      return { apps: decodeAppList(body, problems), problems };
    } catch (err) {
      throw new MarathonError('malformed', `/v2/apps: ${(err as Error).message}`, this.url);
    }
  }

  /** One app with its tasks; null when Marathon no longer has it. */
  async fetchApp(appId: string): Promise<{ app: MarathonApp | null; problems: DecodeProblem[] }> {
    const problems: DecodeProblem[] = [];
    try {
      const body = await this.getJson(`/v2/apps${encodeURI(appId)}?embed=app.tasks&embed=app.readiness`);
      const app = decodeApp((body as { app?: unknown } | null)?.app, problems, true);
      if (!app) throw new MarathonError('malformed', `/v2/apps${appId}: ${problems.map((p) => p.reason).join('; ') || 'no app in the answer'}`, this.url);
      return { app, problems };
    } catch (err) {
      if (err instanceof MarathonError && err.kind === 'not-found') return { app: null, problems };
      throw err;
    }
  }

  /** GET a path from the first URL that answers, starting with the one that answered last. */
  private async getJson(path: string): Promise<unknown> {
    const urls = this.options.urls;
    const failures: string[] = [];
    let last: MarathonError | null = null;
    for (let attempt = 0; attempt < urls.length; attempt += 1) {
      const index = (this.current + attempt) % urls.length;
      const base = urls[index]!;
      try {
        const result = await this.getOnce(base, path);
        this.current = index;
        return result;
      } catch (err) {
        last = err instanceof MarathonError ? err : new MarathonError('unreachable', (err as Error).message, base);
        // A 404 or a body that does not parse is an answer about the resource, not about the URL.
        if (last.kind === 'not-found') throw last;
        failures.push(`${base}: ${last.message}`);
      }
    }
    throw new MarathonError(last?.kind ?? 'unreachable', failures.join('; '), null);
  }

  private async getOnce(base: string, path: string, tokenRenewed = false): Promise<unknown> {
    const url = marathonUrl(base, path);
    const auth = this.options.authorization;
    const token = typeof auth === 'object' && auth !== null ? auth : null;
    // Renews the token when it is close to expiry; headers() then carries the fresh one.
    if (token) await token.header(this.rest);
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, { method: 'GET', headers: this.headers({ accept: 'application/json' }), dispatcher: this.rest });
    } catch (err) {
      throw new MarathonError('unreachable', `${(err as { code?: string }).code ?? ''} ${(err as Error).message}`.trim(), base);
    }
    const text = await response.body.text().catch((err: Error) => {
      throw new MarathonError('malformed', `body cut short: ${err.message}`, base);
    });
    const status = response.statusCode;
    // A token Marathon refuses (revoked, rotated) is renewed once before the answer counts.
    if (status === 401 && token && !tokenRenewed) {
      token.invalidate();
      return this.getOnce(base, path, true);
    }
    if (status === 401 || status === 403) throw new MarathonError('auth', `HTTP ${status} (check --auth-credentials)`, base);
    if (status === 404) throw new MarathonError('not-found', `HTTP 404 for ${path}`, base);
    if (status < 200 || status >= 300) throw new MarathonError('server', `HTTP ${status}`, base);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new MarathonError('malformed', `invalid JSON (${text.length} bytes): ${(err as Error).message}`, base);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.rest.close(), this.dispatcher.close()]);
  }
}
