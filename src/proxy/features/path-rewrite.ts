// marathon-lb's HTTP backend rewrites, as its HAProxy templates do them (config.py, quoted below):
// PROXYPASS (request Host and path), REVPROXY (response Location), root REDIR, and the HSTS value.
// Pure: the data plane calls these with the request's and the response's head fields.

/**
 * HAPROXY_{n}_USE_HSTS, BACKEND_HSTS_OPTIONS:
 *   rspadd  Strict-Transport-Security:\ max-age=15768000
 */
export const HSTS_HEADER_VALUE = 'max-age=15768000';

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH, HTTP_BACKEND_PROXYPASS_GLUE:
 *   http-request set-header Host {hostname}
 *   reqirep  "^([^ :]*)\ {proxypath}/?(.*)" "\1\ /\2"
 * On the request line "METHOD TARGET HTTP/1.1": a target that begins with the path (any case)
 * loses it and one `/` after it, and starts with `/`: with /test/, /test/a?b -> /a?b and /test/ -> /;
 * with /api, /apifoo -> /foo (the regex has no boundary). Any other target is left alone.
 * Different on purpose: marathon-lb puts the label into the regex; Turbine matches it as text.
 */
export function proxyPassTarget(target: string, proxyPath: string): string {
  const match = new RegExp(`^${escapeRegExp(proxyPath)}/?`, 'i').exec(target);
  return match ? '/' + target.slice(match[0].length) : target;
}

/**
 * The Host the backend gets with PROXYPASS: the port's first virtual host. (marathon-lb writes
 * the whole VHOST label, so with several hosts it sends "a.com,b.com"; one host is what is meant.)
 * Null when the port has no virtual host: the Host header is then left as the client sent it.
 */
export function proxyPassHost(vhosts: readonly string[]): string | null {
  return vhosts[0] ?? null;
}

/**
 * HAPROXY_{n}_HTTP_BACKEND_REVPROXY_PATH, HTTP_BACKEND_REVPROXY_GLUE:
 *   acl hdr_location res.hdr(Location) -m found
 *   rspirep "^Location: (https?://{hostname}(:[0-9]+)?)?(/.*)" "Location: {rootpath} if hdr_location"
 * A Location that is a path, or an http(s) URL on one of the port's virtual hosts (any port),
 * becomes the configured path; the new value, or null to keep the header as it is.
 * Different on purpose: the template's line continuation puts ` if hdr_location` inside the
 * replacement, so HAProxy sends `<path> if hdr_location`; Turbine sends the path.
 */
export function revProxyLocation(location: string, vhosts: readonly string[], revProxyPath: string): string | null {
  if (location.startsWith('/')) return revProxyPath;
  const onVhost = new RegExp(`^https?://(${vhosts.map(escapeRegExp).join('|')})(:[0-9]+)?/`, 'i');
  return vhosts.length > 0 && onVhost.test(location) ? revProxyPath : null;
}

/**
 * HAPROXY_{n}_HTTP_BACKEND_REDIR, HTTP_BACKEND_REDIR:
 *   acl is_root path -i /
 *   acl is_domain hdr(host) -i {hostname}
 *   redirect code 301 location {redirpath} if is_domain is_root
 * The Location of a 301 for a request whose path (before `?`) is `/` and whose Host header is one
 * of the port's virtual hosts (any case; exactly, so a Host with a port does not match, as in
 * HAProxy), for any method; null otherwise.
 */
export function rootRedirectLocation(target: string, host: string | undefined, vhosts: readonly string[], redirectPath: string): string | null {
  const path = target.split('?', 1)[0];
  if (path !== '/' || host === undefined) return null;
  const lower = host.toLowerCase();
  return vhosts.some((v) => v.toLowerCase() === lower) ? redirectPath : null;
}

export interface BackendRequestRewrite {
  /** Answer 301 with this Location instead of forwarding. */
  redirect: string | null;
  /** The request target to forward. */
  target: string;
  /** The Host header to forward (null: as the client sent it). */
  host: string | null;
}

/**
 * The three in HAProxy's order for one request: `http-request set-header` first, then `reqirep`,
 * then `redirect` rules, so the root redirect sees the rewritten Host and path.
 */
export function rewriteBackendRequest(
  request: { target: string; host: string | undefined },
  service: { vhosts: readonly string[]; proxyPassPath: string | null; rootRedirect: string | null },
): BackendRequestRewrite {
  let target = request.target;
  let host: string | null = null;
  if (service.proxyPassPath !== null) {
    host = proxyPassHost(service.vhosts);
    target = proxyPassTarget(target, service.proxyPassPath);
  }
  const redirect = service.rootRedirect === null ? null : rootRedirectLocation(target, host ?? request.host, service.vhosts, service.rootRedirect);
  return { redirect, target, host };
}
