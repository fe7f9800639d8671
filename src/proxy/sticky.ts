// Cookie affinity, marathon-lb's HAPROXY_{n}_STICKY: HAProxy's
// `cookie mesosphere_server_id insert indirect nocache`. A response to a client without the
// cookie sets it; a request with it goes to that backend while it is live; the backend never sees
// the cookie. The value is a hash of the address: stable across workers, not the address itself.
import type { Backend } from '../routing/table.js';
import { hash } from '../common/hash.js';
import type { IsUp } from './balancer.js';

export const STICKY_COOKIE = 'mesosphere_server_id';
const PAIR = new RegExp(`(?:^|;\\s*)${STICKY_COOKIE}=([^;]*)`);
const ids = new WeakMap<Backend, string>();

export function stickyId(backend: Backend): string {
  let id = ids.get(backend);
  if (id === undefined) {
    id = hash(backend.address).toString(16);
    ids.set(backend, id);
  }
  return id;
}

/** The live backend the request's cookie names, or null. */
export function stickyBackend(cookie: string | undefined, backends: readonly Backend[], isUp: IsUp): Backend | null {
  if (!cookie) return null;
  const value = PAIR.exec(cookie)?.[1]?.trim();
  if (!value) return null;
  return backends.find((b) => stickyId(b) === value && isUp(b.address)) ?? null;
}

/** The Cookie header without Turbine's pair ("indirect"); null when nothing else is left. */
export function withoutStickyCookie(cookie: string): string | null {
  const rest = cookie.split(';').map((p) => p.trim()).filter((p) => p !== '' && !p.startsWith(`${STICKY_COOKIE}=`));
  return rest.length > 0 ? rest.join('; ') : null;
}

/** The Set-Cookie value naming `backend` (the response also gets Cache-Control: private, "nocache"). */
export function stickySetCookie(backend: Backend): string {
  return `${STICKY_COOKIE}=${stickyId(backend)}; Path=/`;
}
