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
  /** What the port's listener applies of SSL_CERT and BIND_OPTIONS. */
  tls: PortTls;
  /** A security label that could not be honoured: the port must not be served (fail closed). */
  securityError: string | null;
}

const TRUE_WORDS = new Set(['true', 't', 'yes', 'y']);
const FALSE_WORDS = new Set(['false', 'f', 'no', 'n', '0']);

// `_` too: marathon-lb takes the VHOST as given, and internal names such as billing_api.corp are common.
const HOSTNAME = /^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

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

  /** marathon-lb's string_to_bool: true, t, yes, y (any case) are true and any other value false; one it would not write for false is reported. */
  const parseBool = (name: (typeof PER_PORT)[number]): boolean | null => {
    const v = raw(name);
    if (v === undefined) return null;
    const lower = v.toLowerCase();
    if (TRUE_WORDS.has(lower)) return true;
    if (!FALSE_WORDS.has(lower)) warn(name, `expected true or false, got ${JSON.stringify(v)}: read as false, as marathon-lb does`);
    return false;
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
  const tls = readPortTls(sslCert, bindOptions);
  // Only TLS is refused: marathon-lb serves the app's virtual hosts over plain HTTP whatever its bind line says.
  if (tls.refused !== null) warn('BIND_OPTIONS', `${tls.refused}: the service port is not served, nor the virtual hosts on the HTTPS port`);
  if (tls.notApplied.length > 0) {
    warnings.push({ appId, label: label('BIND_OPTIONS'), kind: 'not-applied', reason: `HAProxy bind keywords Turbine does not apply: ${tls.notApplied.join(', ')}` });
  }
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
    tls: tls.tls,
    securityError,
  };
}

export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
const TLS_VERSIONS: readonly TlsVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
/** HAProxy's version names; SSLv3 has no Node equivalent (OpenSSL builds drop it). */
const HAPROXY_VERSIONS: Readonly<Record<string, TlsVersion | 'SSLv3'>> = {
  SSLv3: 'SSLv3', 'TLSv1.0': 'TLSv1', 'TLSv1.1': 'TLSv1.1', 'TLSv1.2': 'TLSv1.2', 'TLSv1.3': 'TLSv1.3',
};
const VERSION_FLAGS: Readonly<Record<string, TlsVersion | 'SSLv3'>> = {
  sslv3: 'SSLv3', tlsv10: 'TLSv1', tlsv11: 'TLSv1.1', tlsv12: 'TLSv1.2', tlsv13: 'TLSv1.3',
};

/** What a port's listener applies of its TLS labels. */
export interface PortTls {
  /** PEM files (certificate and key): SSL_CERT first (the default one), then each `crt` of BIND_OPTIONS. Empty: no TLS. */
  certs: string[];
  /** OpenSSL cipher list (`ciphers` and `ciphersuites` together, as Node takes them). */
  ciphers: string | null;
  minVersion: TlsVersion | null;
  maxVersion: TlsVersion | null;
  /** ALPN protocols offered (`alpn`); null: HAProxy's default, none. */
  alpn: string[] | null;
  /** `strict-sni`: a client whose SNI names no certificate (or that sends none) is refused. */
  strictSni: boolean;
  /** false with `prefer-client-ciphers`; HAProxy otherwise picks the cipher by its own order. */
  honorCipherOrder: boolean;
}

export interface PortTlsReading {
  tls: PortTls;
  /** Keywords of BIND_OPTIONS that have no effect in Turbine. */
  notApplied: string[];
  /**
   * Why the port's TLS must not be served (a keyword that would weaken it if ignored, or a malformed
   * TLS value): the service port stays closed and the HTTPS listener refuses its virtual hosts.
   */
  refused: string | null;
}

/** HAProxy bind keywords that take a value, so the value is not read as a keyword. */
const KEYWORDS_WITH_VALUE = new Set(['accept-netscaler-cip', 'alpn', 'backlog', 'ca-file', 'ca-ignore-err', 'ca-sign-file',
  'ca-sign-pass', 'ca-verify-file', 'ciphers', 'ciphersuites', 'client-sigalgs', 'crl-file', 'crt', 'crt-ignore-err', 'crt-list',
  'curves', 'ecdhe', 'expose-fd', 'gid', 'group', 'id', 'interface', 'level', 'maxconn', 'mode', 'mss', 'name', 'namespace',
  'nice', 'npn', 'process', 'proto', 'severity-output', 'shards', 'sigalgs', 'ssl-max-ver', 'ssl-min-ver', 'tcp-ut', 'thread',
  'tls-ticket-keys', 'uid', 'user', 'verify']);

/**
 * SSL_CERT and BIND_OPTIONS as marathon-lb writes them: `bind ADDR:PORT ssl crt SSL_CERT BIND_OPTIONS`.
 * Applied: ssl, crt, ciphers, ciphersuites, ssl-min-ver, ssl-max-ver, no-sslv3/no-tlsv1x, force-tlsv1x,
 * alpn, strict-sni, prefer-client-ciphers. `verify optional|required` asks for client certificates,
 * which Turbine does not check: serving TLS without them would let anyone in, so it is refused.
 */
export function readPortTls(sslCert: string | null, bindOptions: string | null): PortTlsReading {
  const tls: PortTls = { certs: sslCert !== null ? [sslCert] : [], ciphers: null, minVersion: null, maxVersion: null, alpn: null, strictSni: false, honorCipherOrder: true };
  const notApplied: string[] = [];
  const tlsKeywords: string[] = [];
  let refused: string | null = null;
  let ssl = false;
  const ciphers: string[] = [];
  const disabled = new Set<string>();
  let forced: TlsVersion | 'SSLv3' | null = null;
  let min: TlsVersion | 'SSLv3' | null = null;
  let max: TlsVersion | 'SSLv3' | null = null;
  const tokens = (bindOptions ?? '').split(/\s+/).filter((t) => t !== '');
  for (let i = 0; i < tokens.length; i++) {
    const keyword = tokens[i]!;
    const value = KEYWORDS_WITH_VALUE.has(keyword) ? tokens[++i] : undefined;
    if (KEYWORDS_WITH_VALUE.has(keyword) && value === undefined) {
      refused ??= `${keyword} needs a value`;
      continue;
    }
    const flag = /^(no|force)-(sslv3|tlsv1[0-3])$/.exec(keyword);
    if (keyword === 'ssl') ssl = true;
    else if (keyword === 'crt') tls.certs.push(value!);
    else if (keyword === 'ciphers' || keyword === 'ciphersuites') ciphers.push(value!);
    else if (keyword === 'ssl-min-ver' || keyword === 'ssl-max-ver') {
      if (!(value! in HAPROXY_VERSIONS)) refused ??= `${keyword}: expected one of ${Object.keys(HAPROXY_VERSIONS).join(', ')}, got ${JSON.stringify(value)}`;
      else if (keyword === 'ssl-min-ver') min = HAPROXY_VERSIONS[value!]!;
      else max = HAPROXY_VERSIONS[value!]!;
    } else if (flag) {
      if (flag[1] === 'no') disabled.add(VERSION_FLAGS[flag[2]!]!);
      else forced = VERSION_FLAGS[flag[2]!]!;
    } else if (keyword === 'alpn') tls.alpn = value!.split(',').filter((p) => p !== '');
    else if (keyword === 'strict-sni') tls.strictSni = true;
    else if (keyword === 'prefer-client-ciphers') tls.honorCipherOrder = false;
    else if (keyword === 'verify') {
      if (value !== 'none') refused ??= `verify ${value}: client certificates are not checked by Turbine`;
    } else {
      notApplied.push(keyword);
      continue;
    }
    if (keyword !== 'ssl' && keyword !== 'crt') tlsKeywords.push(keyword);
  }
  if (tls.certs.length === 0) {
    // Without a certificate the port is plain TCP or HTTP: TLS settings have nothing to apply to.
    if (ssl) refused ??= 'ssl without a certificate (HAPROXY_{n}_SSL_CERT or crt)';
    notApplied.push(...tlsKeywords.map((k) => `${k} (no certificate: the port has no TLS)`));
    return { tls, notApplied, refused };
  }
  if (ciphers.length > 0) tls.ciphers = ciphers.join(':');
  // HAProxy serves the versions left between the bounds; Node, a contiguous min..max range. An
  // unset lower bound stays TLSv1.2 (HAProxy's and Node's default): no-sslv3 must not lower it.
  const rank = (v: TlsVersion | 'SSLv3') => (v === 'SSLv3' ? -1 : TLS_VERSIONS.indexOf(v));
  const low = forced ?? min ?? 'TLSv1.2';
  const high = forced ?? max ?? 'TLSv1.3';
  const allowed = TLS_VERSIONS.filter((v) => !disabled.has(v) && rank(v) >= rank(low) && rank(v) <= rank(high));
  if (disabled.size > 0 || forced !== null || min !== null || max !== null) {
    if (allowed.length === 0) refused ??= 'no TLS version left that Turbine can serve (SSLv3 is not supported)';
    else {
      tls.minVersion = allowed[0]!;
      tls.maxVersion = allowed[allowed.length - 1]!;
    }
  }
  return { tls, notApplied, refused };
}
