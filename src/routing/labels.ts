// marathon-lb's HAPROXY_* label semantics for one app port. The only module that reads labels.
// A malformed value is ignored (the default applies) and reported as a warning naming app and label.
import { isIP } from 'node:net';

export type Mode = 'http' | 'tcp';
export type Balance = 'roundrobin' | 'leastconn' | 'source';
export const BALANCES: readonly Balance[] = ['roundrobin', 'leastconn', 'source'];

export interface LabelWarning {
  appId: string;
  label: string;
  reason: string;
}

export interface PortLabels {
  group: string | null;
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
  deploymentGroup: string | null;
  redirectToHttps: boolean;
  sticky: boolean;
}

const HOSTNAME = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/** Labels Turbine reads per port; other HAPROXY_{n}_* labels are HAProxy config templates. */
const PER_PORT = ['GROUP', 'ENABLED', 'PORT', 'MODE', 'VHOST', 'PATH', 'BALANCE', 'BIND_ADDR', 'BACKEND_WEIGHT',
  'BACKEND_HEALTHCHECK_PORT_INDEX', 'REDIRECT_TO_HTTPS', 'STICKY'] as const;

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

  const groupRaw = raw('GROUP');
  const appGroup = labels.HAPROXY_GROUP?.trim();
  return {
    group: groupRaw ? groupRaw : appGroup ? appGroup : null,
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
    deploymentGroup: labels.HAPROXY_DEPLOYMENT_GROUP?.trim() || null,
    redirectToHttps: parseBool('REDIRECT_TO_HTTPS') ?? false,
    sticky: parseBool('STICKY') ?? false,
  };
}
