// Where per-service HTTP features apply (SERVICE-FIELDS.md): basic auth, network ACL, root
// redirect and proxypass path on the request head; HSTS and revproxy Location rewrites on the
// response head. The data plane calls these two hooks on every forwarded exchange; the features
// themselves (src/proxy/features/) are wired in here.
import type { Service } from '../../routing/table.js';
import type { RequestHead } from './request-head.js';
import type { LocalResponse } from './respond.js';

/**
 * Before a request is forwarded: a LocalResponse answers it here (401, 403, 301); null forwards
 * it. May rewrite `head.path` and the Host field in `head.fields` (proxypass).
 */
export function applyRequestFeatures(_service: Service, _head: RequestHead, _clientAddress: string): LocalResponse | null {
  return null;
}

/** Before a response head is written to the client: may add or rewrite fields (HSTS, Location) in `fields`, name/value pairs. */
export function applyResponseFeatures(_service: Service, _request: RequestHead, _status: number, _fields: string[]): void {}
