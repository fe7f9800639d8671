// marathon-lb's HAPROXY_* label semantics for one app port. The only module that reads labels.
// A malformed value is ignored (the default applies) and reported as a warning naming app and label.
import { isIP } from 'node:net';
import { parseAcl } from '../access/network-acl.js';
import { parsePasswordHash } from '../access/password-hash.js';

export type Mode = 'http' | 'tcp';
export type Balance = 'roundrobin' | 'leastconn' | 'source';
export const BALANCES: readonly Balance[] = ['roundrobin', 'leastconn', 'source'];

export interface LabelWarning {
  appId: string;
  label: string;
  reason: string;
  /** malformed: the value was rejected; not-applied: a HAProxy template label Turbine has no use for. */
  kind?: 'malformed' | 'not-applied';
}

export interface BasicAuth { realm: string; user: string; passwordHash: string }

/** The HTTP-feature fields Service carries as they are (the agreed shape in SERVICE-FIELDS.md). */
export interface HttpFeatureLabels {
  auth: BasicAuth | null;
  hsts: boolean;
  proxyPassPath: string | null;
  revProxyPath: string | null;
  rootRedirect: string | null;
  networkAllowed: string[] | null;
  sslCert: string | null;
  bindOptions: string | null;
}

export interface PortLabels extends HttpFeatureLabels {
  /** HAPROXY_{n}_GROUP, else HAPROXY_GROUP: a comma-separated list (one app in several groups). */
  groups: string[];
  enabled: boolean | null;
  port: number | null;
  mode: Mode | null;
  vhosts: string[];
  paths: string[];
  pathsCaseInsensitive: boolean;
  balance: Balance | null;
  bindAddr: string | null;
  backendWeight: number;
  healthCheckPortIndex: number | null;
  redirectToHttps: boolean;
  sticky: boolean;
  /** A security label that could not be honoured: the port must not be served (fail closed). */
  securityError: string | null;
}

const HOSTNAME = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/** Labels Turbine reads per port; other HAPROXY_{n}_* labels are HAProxy config templates. */
const PER_PORT = ['GROUP', 'ENABLED', 'PORT', 'MODE', 'VHOST', 'PATH', 'BALANCE', 'BIND_ADDR', 'BACKEND_WEIGHT',
  'BACKEND_HEALTHCHECK_PORT_INDEX', 'REDIRECT_TO_HTTPS', 'STICKY', 'AUTH', 'USE_HSTS', 'HTTP_BACKEND_PROXYPASS_PATH',
  'HTTP_BACKEND_REVPROXY_PATH', 'HTTP_BACKEND_REDIR', 'BACKEND_NETWORK_ALLOWED_ACL', 'SSL_CERT', 'BIND_OPTIONS'] as const;

export function readPortLabels(appId: string, labels: Readonly<Record<string, string>>, index: number, warnings: LabelWarning[]): PortLabels {
  const label = (name: (typeof PER_PORT)[number]) => `HAPROXY_${index}_${name}`;
  const raw = (name: (typeof PER_PORT)[number]): string | undefined => {
    const v = labels[label(name)];
    return v === undefined ? undefined : v.trim();
  };
  const warn = (name: (typeof PER_PORT)[number], reason: string) => warnings.push({ appId, label: label(name), reason });

  const parseInt = (name: (typeof PER_PORT)[number], min: number, max: number): number | null => {
    const v = raw(name);
    if (v === undefined || v === '') return null;
    if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      warn(name, `expected a whole number ${min}-${max}, got ${JSON.stringify(v)}`);
      return null;
    }
    return Number(v);
  };

  const parseBool = (name: (typeof PER_PORT)[number]): boolean | null => {
    const v = raw(name);
    if (v === undefined) return null;
    if (/^true$/i.test(v)) return true;
    if (/^false$/i.test(v)) return false;
    warn(name, `expected true or false, got ${JSON.stringify(v)}`);
    return null;
  };
  const enabled = parseBool('ENABLED');

  let mode: Mode | null = null;
  const modeRaw = raw('MODE');
  if (modeRaw !== undefined) {
    const lower = modeRaw.toLowerCase();
    if (lower === 'http' || lower === 'tcp') mode = lower;
    else warn('MODE', `expected http or tcp, got ${JSON.stringify(modeRaw)}`);
  }

  const vhosts: string[] = [];
  for (const host of (raw('VHOST') ?? '').split(',')) {
    const h = host.trim().toLowerCase();
    if (h === '') continue;
    if (HOSTNAME.test(h) && h.length <= 253) vhosts.push(h);
    else warn('VHOST', `not a host name: ${JSON.stringify(host.trim())}`);
  }

  const paths: string[] = [];
  let pathsCaseInsensitive = false;
  for (const token of (raw('PATH') ?? '').split(/\s+/)) {
    if (token === '') continue;
    if (token === '-i') pathsCaseInsensitive = true;
    else if (token.startsWith('/')) paths.push(token);
    else warn('PATH', `a path prefix must start with /, got ${JSON.stringify(token)}`);
  }

  let balance: Balance | null = null;
  const balanceRaw = raw('BALANCE');
  if (balanceRaw !== undefined) {
    if ((BALANCES as readonly string[]).includes(balanceRaw.toLowerCase())) balance = balanceRaw.toLowerCase() as Balance;
    else warn('BALANCE', `expected one of ${BALANCES.join(', ')}, got ${JSON.stringify(balanceRaw)}`);
  }

  let bindAddr: string | null = null;
  const bindRaw = raw('BIND_ADDR');
  if (bindRaw !== undefined && bindRaw !== '') {
    if (isIP(bindRaw)) bindAddr = bindRaw;
    else warn('BIND_ADDR', `not an IP address: ${JSON.stringify(bindRaw)}`);
  }

  const text = (name: (typeof PER_PORT)[number]): string | null => raw(name) || null;
  const pathLabel = (name: (typeof PER_PORT)[number]): string | null => {
    const v = text(name);
    if (v === null || v.startsWith('/')) return v;
    warn(name, `a path must start with /, got ${JSON.stringify(v)}`);
    return null;
  };

  // Security labels fail closed: a value Turbine cannot honour stops the port being served.
  let securityError: string | null = null;
  const refuse = (name: (typeof PER_PORT)[number], reason: string) => {
    securityError ??= `${label(name)}: ${reason}`;
    warn(name, `${reason}: port not served`);
  };
  let auth: BasicAuth | null = null;
  const authRaw = text('AUTH');
  if (authRaw !== null) {
    // marathon-lb splits on ':' into exactly three parts (no crypt hash contains ':').
    const parts = authRaw.split(':');
    const [realm, user, passwordHash] = parts;
    const parsed = parts.length === 3 && realm && user ? parsePasswordHash(passwordHash!) : null;
    if (parsed === null) refuse('AUTH', 'expected realm:user:passwordHash');
    else if (!parsed.ok) refuse('AUTH', parsed.error);
    else auth = { realm: realm!, user: user!, passwordHash: passwordHash! };
  }
  let networkAllowed: string[] | null = null;
  const aclRaw = text('BACKEND_NETWORK_ALLOWED_ACL');
  if (aclRaw !== null) {
    const entries = aclRaw.split(/[\s,]+/).filter((e) => e !== '');
    const parsed = parseAcl(entries);
    if (!parsed.ok) refuse('BACKEND_NETWORK_ALLOWED_ACL', parsed.error);
    else networkAllowed = entries;
  }

  const groupText = raw('GROUP') || labels.HAPROXY_GROUP?.trim() || '';
  const sslCert = text('SSL_CERT');
  const bindOptions = text('BIND_OPTIONS');
  // TLS on service ports is not built yet: say so rather than serve the port as if it were.
  if (sslCert !== null) warnings.push({ appId, label: label('SSL_CERT'), kind: 'not-applied', reason: 'TLS on a service port is not implemented yet: the port is served without TLS; use --ssl-certs on --https-port' });
  if (bindOptions !== null) warnings.push({ appId, label: label('BIND_OPTIONS'), kind: 'not-applied', reason: 'HAProxy bind options are not applied (no TLS on service ports yet)' });
  return {
    groups: groupText.split(',').map((g) => g.trim()).filter((g) => g !== ''),
    enabled,
    port: parseInt('PORT', 1, 65535),
    mode,
    vhosts,
    paths,
    pathsCaseInsensitive,
    balance,
    bindAddr,
    backendWeight: parseInt('BACKEND_WEIGHT', -1_000_000, 1_000_000) ?? 0,
    healthCheckPortIndex: parseInt('BACKEND_HEALTHCHECK_PORT_INDEX', 0, 1023),
    redirectToHttps: parseBool('REDIRECT_TO_HTTPS') ?? false,
    sticky: parseBool('STICKY') ?? false,
    auth,
    hsts: parseBool('USE_HSTS') ?? false,
    proxyPassPath: pathLabel('HTTP_BACKEND_PROXYPASS_PATH'),
    revProxyPath: pathLabel('HTTP_BACKEND_REVPROXY_PATH'),
    rootRedirect: pathLabel('HTTP_BACKEND_REDIR'),
    networkAllowed,
    sslCert,
    bindOptions,
    securityError,
  };
}
