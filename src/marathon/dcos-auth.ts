// DC/OS service-account login for Marathon calls, as marathon-lb does it (common.py DCOSAuth):
// an RS256 JWT {uid, exp} signed with the account's private key is POSTed with the uid to the
// login endpoint; the token it returns goes out as `Authorization: token=<token>`. The token is
// renewed before it expires, and once more when Marathon answers 401 (a revoked or rotated key).
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request, type Dispatcher } from 'undici';
import { MarathonError } from './client.js';

export interface DcosCredentials {
  uid: string;
  privateKey: KeyObject;
  loginEndpoint: string;
}

/** What the Marathon client asks of a token-based authorization. */
export interface TokenAuthorization {
  /**
   * The header value last obtained (null before the first login), for a caller that cannot wait:
   * the event stream's (re)connect. A stale or missing token is renewed in the background, so the
   * next reconnect carries a fresh one.
   */
  current(dispatcher: Dispatcher): string | null;
  /** A header value valid for a while yet, logging in first when needed. */
  header(dispatcher: Dispatcher): Promise<string>;
  /** Marathon refused the current token: the next header() logs in again. */
  invalidate(): void;
}

/**
 * The credential as marathon-lb takes it (DCOS_SERVICE_ACCOUNT_CREDENTIAL holds the JSON), or the
 * path of a file holding that JSON (how DC/OS file-based secrets arrive). Throws with the reason.
 */
export function parseDcosCredentials(value: string): DcosCredentials {
  let text = value.trim();
  if (!text.startsWith('{')) {
    try {
      text = readFileSync(text, 'utf8');
    } catch (err) {
      throw new Error(`neither JSON nor a readable file: ${(err as Error).message}`);
    }
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON: ${(err as Error).message}`);
  }
  const { uid, private_key: pem, login_endpoint: endpoint } = (data ?? {}) as Record<string, unknown>;
  if (typeof uid !== 'string' || uid === '') throw new Error('"uid" must be a non-empty string');
  if (typeof pem !== 'string') throw new Error('"private_key" must be a PEM string');
  if (typeof endpoint !== 'string' || !/^https?:\/\//.test(endpoint) || !URL.canParse(endpoint)) throw new Error('"login_endpoint" must be an http(s) URL');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw new Error(`"private_key" is not a usable PEM key: ${(err as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== 'rsa') throw new Error(`"private_key" must be an RSA key (RS256), not ${privateKey.asymmetricKeyType}`);
  return { uid, privateKey, loginEndpoint: endpoint };
}

const base64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

/** The login JWT: marathon-lb signs {uid, exp: now + 60} with RS256. */
export function loginJwt(credentials: DcosCredentials, nowSeconds: number): string {
  const signingInput = `${base64url(JSON.stringify({ typ: 'JWT', alg: 'RS256' }))}.${base64url(JSON.stringify({ uid: credentials.uid, exp: nowSeconds + 60 }))}`;
  return `${signingInput}.${sign('sha256', Buffer.from(signingInput), credentials.privateKey).toString('base64url')}`;
}

/** The `exp` claim of a JWT, or null when the token is not a JWT with one. */
function jwtExpiry(token: string): number | null {
  try {
    const exp = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : null;
  } catch {
    return null;
  }
}

export interface DcosAuthOptions {
  /** Seconds since the epoch (tests move it). */
  now?: () => number;
  /** Lifetime asked of the login endpoint (marathon-lb: 3600 s). */
  tokenLifetimeSeconds?: number;
  /** Renew this long before the token expires. */
  renewBeforeSeconds?: number;
}

export class DcosAuth implements TokenAuthorization {
  private token: string | null = null;
  private expiresAt = 0;
  private pending: Promise<string> | null = null;
  private readonly now: () => number;
  private readonly lifetime: number;
  private readonly renewBefore: number;

  constructor(private readonly credentials: DcosCredentials, options: DcosAuthOptions = {}) {
    this.now = options.now ?? (() => Date.now() / 1000);
    this.lifetime = options.tokenLifetimeSeconds ?? 3600;
    this.renewBefore = options.renewBeforeSeconds ?? 60;
  }

  current(dispatcher: Dispatcher): string | null {
    // A failed login is not lost: the next REST call logs in again and reports the error.
    if (!this.fresh()) this.header(dispatcher).catch(() => undefined);
    return this.token === null ? null : `token=${this.token}`;
  }

  private fresh(): boolean {
    return this.token !== null && this.now() < this.expiresAt - this.renewBefore;
  }

  async header(dispatcher: Dispatcher): Promise<string> {
    if (this.fresh()) return `token=${this.token}`;
    // One login at a time: concurrent calls (resync and app refetches) share it.
    this.pending ??= this.login(dispatcher).finally(() => { this.pending = null; });
    return `token=${await this.pending}`;
  }

  invalidate(): void {
    this.expiresAt = 0;
  }

  private async login(dispatcher: Dispatcher): Promise<string> {
    const endpoint = this.credentials.loginEndpoint;
    const now = Math.floor(this.now());
    const requestedExpiry = now + this.lifetime;
    const body = JSON.stringify({ uid: this.credentials.uid, token: loginJwt(this.credentials, now), exp: requestedExpiry });
    let response: Dispatcher.ResponseData;
    try {
      response = await request(endpoint, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body, dispatcher });
    } catch (err) {
      throw new MarathonError('unreachable', `DC/OS login at ${endpoint}: ${(err as Error).message}`, endpoint);
    }
    const text = await response.body.text().catch(() => '');
    if (response.statusCode !== 200) {
      throw new MarathonError('auth', `DC/OS login at ${endpoint} for ${this.credentials.uid}: HTTP ${response.statusCode} (check --dcos-auth-credentials)`, endpoint);
    }
    const token = tokenFromBody(text) ?? tokenFromCookie(response.headers['set-cookie']);
    // The token becomes a header value: nothing but visible ASCII gets there.
    if (token === null || !/^[\x21-\x7e]+$/.test(token)) throw new MarathonError('auth', `DC/OS login at ${endpoint}: no usable token in the answer`, endpoint);
    this.token = token;
    this.expiresAt = Math.min(requestedExpiry, jwtExpiry(token) ?? requestedExpiry);
    return token;
  }
}

/** DC/OS IAM answers {"token": "..."}. */
function tokenFromBody(text: string): string | null {
  try {
    const token = (JSON.parse(text) as { token?: unknown } | null)?.token;
    return typeof token === 'string' && token !== '' ? token : null;
  } catch {
    return null;
  }
}

/** marathon-lb reads the dcos-acs-auth-cookie cookie the login also sets. */
function tokenFromCookie(header: string | string[] | undefined): string | null {
  for (const cookie of [header ?? []].flat()) {
    const match = /^\s*dcos-acs-auth-cookie=([^;]+)/.exec(cookie);
    if (match) return match[1]!;
  }
  return null;
}
