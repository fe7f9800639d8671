// Source-address allow-lists for HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL ("10.1.40.0/24 10.1.55.43"),
// which marathon-lb turns into `acl network_allowed src <entry>` then `http-request allow if
// network_allowed` / `http-request deny` (tcp: `tcp-request content accept|reject`), config.py.
// In src/access/ (pure, no proxy or routing imports), so routing can validate a label (and fail
// closed on a bad entry) and the proxy can compile the same entries into a matcher.
// Entries: IPv4 or IPv6 addresses, with an optional /prefix (IPv4 also takes a dotted netmask, as
// HAProxy does). Addresses to match come as Node reports them: `1.2.3.4`, `::1`, and IPv4 clients
// of a dual-stack socket as IPv4-mapped `::ffff:1.2.3.4`, which match IPv4 entries.
import { isIPv4, isIPv6 } from 'node:net';

/** An address as four 32-bit words (IPv4 uses only the last), with its family. */
interface Address {
  v6: boolean;
  words: [number, number, number, number];
}

interface Network {
  v6: boolean;
  words: [number, number, number, number];
  masks: [number, number, number, number];
}

export type AddressMatcher = (address: string) => boolean;
export type ParsedAcl = { ok: true; matcher: AddressMatcher } | { ok: false; error: string };

function ipv4Word(text: string): number | null {
  if (!isIPv4(text)) return null;
  const parts = text.split('.');
  // 010.0.0.1 is octal to inet_aton and decimal to others: refuse the ambiguity.
  if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return null;
  return parts.reduce((w, p) => ((w << 8) | Number(p)) >>> 0, 0);
}

function ipv6Words(text: string): [number, number, number, number] | null {
  if (!isIPv6(text) || text.includes('%')) return null;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes its two hex groups.
  const dotted = /:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let hex = text;
  if (dotted) {
    const v4 = ipv4Word(dotted[1]!);
    if (v4 === null) return null;
    hex = `${text.slice(0, dotted.index + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = hex.split('::');
  const groups = (s: string | undefined) => (s ? s.split(':').map((h) => parseInt(h, 16)) : []);
  const left = groups(halves[0]);
  const right = groups(halves[1]);
  const fill = 8 - left.length - right.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return null;
  const h = [...left, ...new Array<number>(fill).fill(0), ...right];
  return [((h[0]! << 16) | h[1]!) >>> 0, ((h[2]! << 16) | h[3]!) >>> 0, ((h[4]! << 16) | h[5]!) >>> 0, ((h[6]! << 16) | h[7]!) >>> 0];
}

/** An address to match; IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address. */
function parseAddress(text: string): Address | null {
  const v4 = ipv4Word(text);
  if (v4 !== null) return { v6: false, words: [0, 0, 0, v4] };
  const w = ipv6Words(text);
  if (!w) return null;
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return { v6: false, words: [0, 0, 0, w[3]] };
  return { v6: true, words: w };
}

function prefixMasks(prefix: number, v6: boolean): [number, number, number, number] {
  const bits = v6 ? prefix : prefix + 96;
  return [0, 1, 2, 3].map((i) => {
    const n = Math.max(0, Math.min(32, bits - i * 32));
    return n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  }) as [number, number, number, number];
}

/** A contiguous dotted netmask (255.255.255.0) as a prefix length, or null. */
function netmaskPrefix(text: string): number | null {
  const w = ipv4Word(text);
  if (w === null) return null;
  const prefix = Math.clz32(~w >>> 0);
  return prefixMasks(prefix, false)[3] === w ? prefix : null;
}

function parseNetwork(entry: string): Network | string {
  const slash = entry.indexOf('/');
  const addressText = slash < 0 ? entry : entry.slice(0, slash);
  const prefixText = slash < 0 ? null : entry.slice(slash + 1);
  const address = parseAddress(addressText);
  if (!address) return `"${entry}": not an IPv4 or IPv6 address${/[a-z]/i.test(addressText) && !addressText.includes(':') ? ' (host names are not resolved)' : ''}`;
  const max = address.v6 ? 128 : 32;
  let prefix = max;
  if (prefixText !== null) {
    const mapped = !address.v6 && addressText.includes(':');
    if (/^\d{1,3}$/.test(prefixText)) prefix = Number(prefixText) - (mapped ? 96 : 0);
    else if (!address.v6 && !mapped && netmaskPrefix(prefixText) !== null) prefix = netmaskPrefix(prefixText)!;
    else return `"${entry}": "${prefixText}" is not a prefix length${address.v6 ? '' : ' or netmask'}`;
    if (prefix < 0 || prefix > max) return `"${entry}": prefix length out of range (${mapped ? '96-128' : `0-${max}`})`;
  }
  const masks = prefixMasks(prefix, address.v6);
  return { v6: address.v6, masks, words: address.words.map((w, i) => (w & masks[i]!) >>> 0) as Network['words'] };
}

/**
 * Compiles the entries (as the label lists them, split on white space) into a matcher, or says
 * which entry is wrong: a caller that cannot honour the list must not serve the port.
 */
export function parseAcl(entries: readonly string[]): ParsedAcl {
  if (entries.length === 0) return { ok: false, error: 'no address in the list' };
  const networks: Network[] = [];
  for (const entry of entries) {
    const network = parseNetwork(entry.trim());
    if (typeof network === 'string') return { ok: false, error: network };
    networks.push(network);
  }
  const v4 = networks.filter((n) => !n.v6).map((n) => [n.words[3], n.masks[3]] as const);
  const v6 = networks.filter((n) => n.v6);
  return {
    ok: true,
    matcher: (text) => {
      const address = parseAddress(text);
      if (!address) return false;
      if (!address.v6) {
        const w = address.words[3];
        return v4.some(([net, mask]) => ((w & mask) >>> 0) === net);
      }
      const w = address.words;
      return v6.some((n) => ((w[0] & n.masks[0]) >>> 0) === n.words[0] && ((w[1] & n.masks[1]) >>> 0) === n.words[1]
        && ((w[2] & n.masks[2]) >>> 0) === n.words[2] && ((w[3] & n.masks[3]) >>> 0) === n.words[3]);
    },
  };
}
