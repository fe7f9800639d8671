// Passwords against the hashes marathon-lb users put in HAPROXY_{n}_AUTH ("realm:user:hash"), which
// marathon-lb writes into an HAProxy userlist as `user U password HASH`; HAProxy checks it with
// crypt(3). Supported, with the algorithms written out over node:crypto hashes:
//   $6$ SHA-512-crypt and $5$ SHA-256-crypt (Ulrich Drepper, "Unix crypt using SHA-256 and
//       SHA-512", https://www.akkadia.org/drepper/SHA-crypt.txt), with rounds=;
//   $1$ MD5-crypt (Poul-Henning Kamp's FreeBSD crypt-md5.c);
//   a value without a `$id$` prefix is a plain password, compared as HAProxy's `insecure-password`
//   would. glibc's crypt(3) would read it as a DES hash; DES-crypt is not supported (HAProxy on a
//   musl or DES-less libc refuses it too), so a 13-character DES hash is compared as plain text.
// Any other `$id$` (bcrypt, yescrypt, scrypt...) is refused, so the caller can fail closed.
// Comparisons are constant-time. In src/access/ (pure, no proxy or routing imports) so routing can
// refuse an AUTH label it cannot honour (fail closed) and the proxy can check passwords.
import { createHash, timingSafeEqual } from 'node:crypto';

export type PasswordScheme = 'sha512-crypt' | 'sha256-crypt' | 'md5-crypt' | 'plain';

export interface PasswordHash {
  readonly scheme: PasswordScheme;
  verify(password: Buffer | string): boolean;
}

export type ParsedPasswordHash = { ok: true; hash: PasswordHash } | { ok: false; error: string };

const ROUNDS_DEFAULT = 5000;
const ROUNDS_MIN = 1000;
/**
 * glibc accepts up to 999,999,999 rounds; a label asking for that would stall the proxy on every
 * login (each check costs rounds x two hashes). Above this, the hash is refused (fail closed).
 */
export const ROUNDS_MAX = 1_000_000;

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** crypt's base-64: `count` characters from a 24-bit group, least significant 6 bits first. */
function b64From24(b2: number, b1: number, b0: number, count: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let out = '';
  for (let i = 0; i < count; i += 1) {
    out += ITOA64[w & 0x3f];
    w >>= 6;
  }
  return out;
}

/** `length` bytes of `block` repeated (the spec's "sequence P" and "sequence S"). */
function repeatTo(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += block.length) block.copy(out, i, 0, Math.min(block.length, length - i));
  return out;
}

// Drepper's spec, step 22: the order in which the final digest's bytes are encoded.
const SHA512_ORDER: readonly (readonly [number, number, number])[] = [
  [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48], [28, 49, 7],
  [50, 8, 29], [9, 30, 51], [31, 52, 10], [53, 11, 32], [12, 33, 54], [34, 55, 13], [56, 14, 35], [15, 36, 57],
  [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
];
const SHA256_ORDER: readonly (readonly [number, number, number])[] = [
  [0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14], [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29],
];

/** The hash part (after the last `$`) of SHA-256/512-crypt for a password, salt (<= 16 bytes) and rounds. */
export function shaCryptDigest(algorithm: 'sha256' | 'sha512', password: Buffer, salt: Buffer, rounds: number): string {
  const h = () => createHash(algorithm);
  const size = algorithm === 'sha512' ? 64 : 32;
  const b = h().update(password).update(salt).update(password).digest();
  const a = h().update(password).update(salt).update(repeatTo(b, password.length));
  for (let n = password.length; n > 0; n >>= 1) a.update(n & 1 ? b : password);
  let c = a.digest();
  const dp = h();
  for (let i = 0; i < password.length; i += 1) dp.update(password);
  const p = repeatTo(dp.digest(), password.length);
  const ds = h();
  for (let i = 0; i < 16 + c[0]!; i += 1) ds.update(salt);
  const s = repeatTo(ds.digest(), salt.length);
  for (let i = 0; i < rounds; i += 1) {
    const round = h();
    round.update(i & 1 ? p : c);
    if (i % 3 !== 0) round.update(s);
    if (i % 7 !== 0) round.update(p);
    round.update(i & 1 ? c : p);
    c = round.digest();
  }
  const order = size === 64 ? SHA512_ORDER : SHA256_ORDER;
  const body = order.map(([x, y, z]) => b64From24(c[x]!, c[y]!, c[z]!, 4)).join('');
  return body + (size === 64 ? b64From24(0, 0, c[63]!, 2) : b64From24(0, c[31]!, c[30]!, 3));
}

/** The hash part of FreeBSD MD5-crypt for a password and salt (<= 8 bytes). */
export function md5CryptDigest(password: Buffer, salt: Buffer): string {
  const h = () => createHash('md5');
  const alternate = h().update(password).update(salt).update(password).digest();
  const ctx = h().update(password).update('$1$').update(salt);
  for (let left = password.length; left > 0; left -= 16) ctx.update(alternate.subarray(0, Math.min(left, 16)));
  // The C code feeds a NUL or the password's first byte for each bit of the length.
  for (let n = password.length; n > 0; n >>= 1) ctx.update(n & 1 ? Buffer.of(0) : password.subarray(0, 1));
  let f = ctx.digest();
  for (let i = 0; i < 1000; i += 1) {
    const round = h();
    round.update(i & 1 ? password : f);
    if (i % 3 !== 0) round.update(salt);
    if (i % 7 !== 0) round.update(password);
    round.update(i & 1 ? f : password);
    f = round.digest();
  }
  return b64From24(f[0]!, f[6]!, f[12]!, 4) + b64From24(f[1]!, f[7]!, f[13]!, 4) + b64From24(f[2]!, f[8]!, f[14]!, 4)
    + b64From24(f[3]!, f[9]!, f[15]!, 4) + b64From24(f[4]!, f[10]!, f[5]!, 4) + b64From24(0, 0, f[11]!, 2);
}

function constantTimeEqual(a: string | Buffer, b: string | Buffer): boolean {
  // Digests first: equal lengths for timingSafeEqual, and the length of the secret does not leak.
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

const CRYPT_CHARS = /^[./0-9A-Za-z]+$/;

/** Reads a stored hash once (labels change rarely; passwords are checked per request). */
export function parsePasswordHash(stored: string): ParsedPasswordHash {
  if (!stored.startsWith('$')) {
    if (stored === '') return { ok: false, error: 'empty password hash' };
    // What HAProxy's crypt(3) reads as a traditional DES hash: taken as a plain password, the hash
    // text itself would log in and the real password would not, so the port fails closed instead.
    if (stored.length === 13 && CRYPT_CHARS.test(stored)) return { ok: false, error: 'a DES crypt hash (13 characters of ./0-9A-Za-z) is not supported: use a $6$, $5$ or $1$ hash' };
    const plain = Buffer.from(stored);
    return { ok: true, hash: { scheme: 'plain', verify: (pw) => constantTimeEqual(Buffer.from(pw), plain) } };
  }
  const match = /^\$(1|5|6)\$(?:rounds=([^$]*)\$)?([^$]*)\$([^$]*)$/.exec(stored);
  if (!match) {
    const id = /^\$([^$]*)\$/.exec(stored)?.[1];
    return { ok: false, error: id === undefined ? 'malformed crypt hash' : `unsupported crypt hash $${id}$ (supported: $1$ MD5, $5$ SHA-256, $6$ SHA-512, or a plain password)` };
  }
  const [, id, roundsText, saltText, digest] = match as unknown as [string, '1' | '5' | '6', string | undefined, string, string];
  const expectedLength = { '1': 22, '5': 43, '6': 86 }[id];
  if (digest.length !== expectedLength || !CRYPT_CHARS.test(digest)) return { ok: false, error: `malformed $${id}$ hash: the hash part must be ${expectedLength} characters of ./0-9A-Za-z` };
  if (id === '1') {
    if (roundsText !== undefined) return { ok: false, error: 'malformed $1$ hash: MD5-crypt has no rounds' };
    const salt = Buffer.from(saltText.slice(0, 8));
    return { ok: true, hash: { scheme: 'md5-crypt', verify: (pw) => constantTimeEqual(md5CryptDigest(Buffer.from(pw), salt), digest) } };
  }
  let rounds = ROUNDS_DEFAULT;
  if (roundsText !== undefined) {
    if (!/^\d{1,10}$/.test(roundsText)) return { ok: false, error: `malformed $${id}$ hash: rounds=${roundsText} is not a number` };
    // glibc clamps a low count up to 1000.
    rounds = Math.max(ROUNDS_MIN, Number(roundsText));
    if (rounds > ROUNDS_MAX) return { ok: false, error: `$${id}$ hash with rounds=${roundsText}: more than ${ROUNDS_MAX} rounds is refused (each login would stall the proxy)` };
  }
  const salt = Buffer.from(saltText.slice(0, 16));
  const algorithm = id === '6' ? 'sha512' : 'sha256';
  return {
    ok: true,
    hash: { scheme: id === '6' ? 'sha512-crypt' : 'sha256-crypt', verify: (pw) => constantTimeEqual(shaCryptDigest(algorithm, Buffer.from(pw), salt, rounds), digest) },
  };
}
