// HTTP basic auth at the proxy for HAPROXY_{n}_AUTH, as marathon-lb's templates do it
// (config.py HTTP_FRONTEND_ACL_WITH_AUTH: `acl auth_X http_auth(user_B)` and
// `http-request auth realm "{realm}" if host_X !auth_X`): a request without matching credentials
// gets 401 with `WWW-Authenticate: Basic realm="..."`.
//
// Successful checks are cached by the Authorization header value: a client sends the same header
// on every request, and a crypt check costs milliseconds of CPU (SHA-512-crypt: 5000 rounds of two
// hashes) on the proxy's event loop, so without the cache every request of a logged-in client
// would pay it and stall every other request meanwhile. The cache is bounded (LRU) and holds only
// headers that matched; failures are never cached, so a wrong guess cannot evict good entries.
import { timingSafeEqual } from 'node:crypto';
import { parsePasswordHash, type PasswordHash } from '../../access/password-hash.js';

/** The Service field (SERVICE-FIELDS.md): HAPROXY_{n}_AUTH "realm:user:hash". */
export interface BasicAuth {
  realm: string;
  user: string;
  passwordHash: string;
}

export interface BasicAuthChecker {
  /** Value of the WWW-Authenticate header of the 401. */
  readonly challenge: string;
  /** Whether a request with this Authorization header may pass. */
  allows(authorization: string | undefined): boolean;
}

export type CompiledBasicAuth = { ok: true; checker: BasicAuthChecker } | { ok: false; error: string };

export const DEFAULT_CACHE_SIZE = 256;

/**
 * `Basic realm="..."`: the realm as an RFC 9110 quoted-string (`"` and `\` escaped); characters a
 * header value cannot carry (controls, non-ASCII) become `?`, so a label cannot inject a header.
 */
export function basicChallenge(realm: string): string {
  const safe = realm.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, '\\$&');
  return `Basic realm="${safe}"`;
}

/** user and password from `Basic <base64(user:password)>`, or null when it is not that. */
export function parseBasicCredentials(authorization: string): { user: Buffer; password: Buffer } | null {
  const match = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(authorization);
  if (!match) return null;
  const decoded = Buffer.from(match[1]!, 'base64');
  const colon = decoded.indexOf(0x3a);
  if (colon < 0) return null;
  return { user: decoded.subarray(0, colon), password: decoded.subarray(colon + 1) };
}

export function compileBasicAuth(auth: BasicAuth, cacheSize = DEFAULT_CACHE_SIZE): CompiledBasicAuth {
  if (auth.user === '') return { ok: false, error: 'AUTH: empty user name' };
  const parsed = parsePasswordHash(auth.passwordHash);
  if (!parsed.ok) return { ok: false, error: `AUTH: ${parsed.error}` };
  return { ok: true, checker: new CachedBasicAuth(Buffer.from(auth.user), parsed.hash, basicChallenge(auth.realm), cacheSize) };
}

/** Exported for tests, which count the hash checks through their own PasswordHash. */
export class CachedBasicAuth implements BasicAuthChecker {
  /** Authorization header values that matched, least recently used first (Map keeps insertion order). */
  private readonly matched = new Map<string, true>();

  constructor(private readonly user: Buffer, private readonly hash: PasswordHash, readonly challenge: string, private readonly cacheSize: number) {
    if (!(cacheSize >= 1)) throw new RangeError('cache size must be at least 1');
  }

  allows(authorization: string | undefined): boolean {
    if (authorization === undefined) return false;
    if (this.matched.has(authorization)) {
      this.matched.delete(authorization);
      this.matched.set(authorization, true);
      return true;
    }
    const credentials = parseBasicCredentials(authorization);
    if (!credentials) return false;
    const userMatches = credentials.user.length === this.user.length && timingSafeEqual(credentials.user, this.user);
    // The hash is checked even for a wrong user, so the answer takes as long either way.
    const passwordMatches = this.hash.verify(credentials.password);
    if (!userMatches || !passwordMatches) return false;
    if (this.matched.size >= this.cacheSize) this.matched.delete(this.matched.keys().next().value!);
    this.matched.set(authorization, true);
    return true;
  }
}
