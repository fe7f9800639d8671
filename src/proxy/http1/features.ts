// Where per-service HTTP features apply (marathon-lb's AUTH, NETWORK_ALLOWED_ACL, HTTP_BACKEND_REDIR,
// HTTP_BACKEND_PROXYPASS_PATH on the request head; USE_HSTS and HTTP_BACKEND_REVPROXY_PATH on the
// response head). The pure functions live in src/proxy/features/ and src/access/; this module
// compiles them once per service value and applies them in marathon-lb's order: the frontend's
// auth first (401), then the backend's network ACL (403), then the rewrites.
import { parseAcl, type AddressMatcher } from '../../access/network-acl.js';
import type { Service } from '../../routing/table.js';
import { compileBasicAuth, type BasicAuthChecker } from '../features/basic-auth.js';
import { HSTS_HEADER_VALUE, revProxyLocation, rewriteBackendRequest } from '../features/path-rewrite.js';
import { field, type RequestHead } from './request-head.js';
import type { LocalResponse } from './respond.js';

interface CompiledFeatures {
  /** null: no AUTH label. A label routing let through but that does not compile denies everyone. */
  auth: BasicAuthChecker | null;
  acl: AddressMatcher | null;
}

const DENY_ALL: AddressMatcher = () => false;
const compiled = new WeakMap<Service, CompiledFeatures>();

/** Services are immutable values: one compile per value, and a changed label is a new value. */
function featuresOf(service: Service): CompiledFeatures {
  let f = compiled.get(service);
  if (f === undefined) {
    const auth = service.auth === null ? null : compileBasicAuth(service.auth);
    const acl = service.networkAllowed === null ? null : parseAcl(service.networkAllowed);
    f = {
      auth: auth === null ? null : auth.ok ? auth.checker : { challenge: 'Basic realm="turbine"', allows: () => false },
      acl: acl === null ? null : acl.ok ? acl.matcher : DENY_ALL,
    };
    compiled.set(service, f);
  }
  return f;
}

/** Whether a client address may reach the service (HTTP and TCP alike). */
export function networkAllowed(service: Service, clientAddress: string): boolean {
  return service.networkAllowed === null || featuresOf(service).acl!(clientAddress);
}

/** The 401 a request gets when the service has AUTH and the request lacks its credentials; null when it may go on. */
export function authChallenge(service: Service, head: RequestHead): LocalResponse | null {
  const auth = service.auth === null ? null : featuresOf(service).auth;
  if (auth === null || auth.allows(field(head, 'authorization'))) return null;
  return { status: 401, text: 'Unauthorized\n', headers: [['www-authenticate', auth.challenge]] };
}

/**
 * Before a request is forwarded: a LocalResponse answers it here (401, 403, 301); null forwards
 * it, with `head.path` and the Host field rewritten for PROXYPASS.
 */
export function applyRequestFeatures(service: Service, head: RequestHead, clientAddress: string): LocalResponse | null {
  if (service.auth === null && service.networkAllowed === null && service.proxyPassPath === null && service.rootRedirect === null) return null;
  const features = featuresOf(service);
  const denied = authChallenge(service, head);
  if (denied !== null) return denied;
  if (features.acl !== null && !features.acl(clientAddress)) return { status: 403, text: 'Forbidden: your network may not reach this service\n' };
  if (service.proxyPassPath === null && service.rootRedirect === null) return null;
  const rewrite = rewriteBackendRequest({ target: head.path, host: field(head, 'host') }, service);
  if (rewrite.redirect !== null) return { status: 301, text: '', headers: [['location', rewrite.redirect]] };
  head.path = rewrite.target;
  if (rewrite.host !== null) {
    for (let i = 0; i < head.fields.length; i += 2) if (head.fields[i]!.toLowerCase() === 'host') head.fields[i + 1] = rewrite.host;
  }
  return null;
}

/** Before a response head is written to the client: HSTS added, Location rewritten (REVPROXY). */
export function applyResponseFeatures(service: Service, _request: RequestHead, _status: number, fields: string[]): void {
  if (service.hsts) fields.push('strict-transport-security', HSTS_HEADER_VALUE);
  if (service.revProxyPath === null) return;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i]!.toLowerCase() !== 'location') continue;
    const rewritten = revProxyLocation(fields[i + 1]!, service.vhosts, service.revProxyPath);
    if (rewritten !== null) fields[i + 1] = rewritten;
  }
}
