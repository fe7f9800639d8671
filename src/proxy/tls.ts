// TLS for listeners. Certificate files are PEM files holding a certificate and its key (HAProxy's
// `crt`: marathon-lb's --ssl-certs and HAPROXY_{n}_SSL_CERT). They are read once and re-read when
// they change on disk, so new connections get a renewed certificate without a restart; a file that
// turns unreadable or invalid keeps its last good copy.
import { readFileSync, statSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { TlsVersion } from '../routing/labels.js';

export interface LoadedCertificate {
  path: string;
  pem: string;
  /** DNS names it is for (subject alternative names, else the common name), lower case. */
  names: string[];
  /** Changes whenever the file's content changes: what a listener rebuilds its contexts on. */
  generation: number;
}

export type CertificateFailure = 'unreadable' | 'invalid';

interface FileState {
  stamp: string;
  loaded: LoadedCertificate | null;
  error: string | null;
}

/** One stat is enough to tell a rewritten or replaced file (inode for rename-into-place, times for in-place). */
function stampOf(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch (err) {
    return `error:${(err as NodeJS.ErrnoException).code ?? ''}`;
  }
}

function namesOf(pem: string): string[] {
  const cert = new X509Certificate(pem);
  const altNames = (cert.subjectAltName ?? '').split(',').map((s) => s.trim()).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4).toLowerCase());
  const cn = /CN=([^\n,]+)/.exec(cert.subject)?.[1]?.toLowerCase();
  return altNames.length > 0 ? altNames : cn ? [cn] : [];
}

/** Certificate files by path, each loaded once and reloaded by refresh() when it changed. */
export class CertificateFiles {
  private readonly files = new Map<string, FileState>();
  private generation = 0;

  /** `onFailure` hears of every load that failed; `kept` says whether a last good copy is still served. */
  constructor(private readonly onFailure: (path: string, reason: CertificateFailure, message: string, kept: boolean) => void) {}

  /** The certificate at `path`, or why there is none (it never loaded). */
  get(path: string): LoadedCertificate | Error {
    let state = this.files.get(path);
    if (!state) {
      state = { stamp: '', loaded: null, error: null };
      this.files.set(path, state);
      this.load(path, state);
    }
    return state.loaded ?? new Error(state.error ?? `${path}: not loaded`);
  }

  /** Re-checks every file in use; true when one now serves different content. */
  refresh(): boolean {
    let changed = false;
    for (const [path, state] of this.files) if (this.load(path, state)) changed = true;
    return changed;
  }

  /** Files no listener uses any more are no longer watched. */
  retain(paths: ReadonlySet<string>): void {
    for (const path of this.files.keys()) if (!paths.has(path)) this.files.delete(path);
  }

  private load(path: string, state: FileState): boolean {
    const stamp = stampOf(path);
    if (stamp === state.stamp) return false;
    state.stamp = stamp;
    let pem: string;
    try {
      pem = readFileSync(path, 'utf8');
    } catch (err) {
      return this.fail(path, state, 'unreadable', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (state.loaded?.pem === pem) return false;
    try {
      createSecureContext({ cert: pem, key: pem }); // throws without a key, or with one that does not match
      state.loaded = { path, pem, names: namesOf(pem), generation: ++this.generation };
      state.error = null;
      return true;
    } catch (err) {
      return this.fail(path, state, 'invalid', `${path} is not a PEM certificate with its key: ${(err as Error).message}`);
    }
  }

  private fail(path: string, state: FileState, reason: CertificateFailure, message: string): false {
    state.error = message;
    this.onFailure(path, reason, message, state.loaded !== null);
    return false;
  }
}

/** How a TLS listener negotiates, besides its certificates. */
export interface TlsSettings {
  ciphers: string | null;
  minVersion: TlsVersion | null;
  maxVersion: TlsVersion | null;
  honorCipherOrder: boolean;
  /** ALPN protocols offered; undefined offers none. */
  alpn: string[] | undefined;
  strictSni: boolean;
}

/** What a TLS listener serves: rebuilt (a new object) whenever a certificate or a setting changes. */
export interface TlsServing {
  /** For tls.createServer and Server.setSecureContext: the default certificate and the settings. */
  options: SecureContextOptions;
  alpn: string[] | undefined;
  /** The context for a client's SNI name: undefined for the default one (none with strict-sni), null when the handshake is refused. */
  sni(servername: string): SecureContext | null | undefined;
}

export interface TlsSources {
  /** The first is the default certificate; each also answers SNI for its own names. */
  certificates: readonly LoadedCertificate[];
  /** Host names with a certificate of their own, ahead of the names above; null refuses the name. */
  vhosts: ReadonlyMap<string, LoadedCertificate | null>;
}

/** Throws when OpenSSL refuses a setting (an unknown cipher list). */
export function serveTls(sources: TlsSources, settings: TlsSettings): TlsServing {
  const base: SecureContextOptions = { honorCipherOrder: settings.honorCipherOrder };
  if (settings.ciphers !== null) base.ciphers = settings.ciphers;
  if (settings.minVersion !== null) base.minVersion = settings.minVersion;
  if (settings.maxVersion !== null) base.maxVersion = settings.maxVersion;
  const contexts = new Map<LoadedCertificate, SecureContext>();
  const contextOf = (cert: LoadedCertificate) => {
    let context = contexts.get(cert);
    if (!context) {
      context = createSecureContext({ ...base, cert: cert.pem, key: cert.pem });
      contexts.set(cert, context);
    }
    return context;
  };
  const byName = new Map<string, SecureContext | null>();
  for (const [name, cert] of sources.vhosts) byName.set(name, cert ? contextOf(cert) : null);
  for (const cert of sources.certificates) {
    const context = contextOf(cert);
    for (const name of cert.names) if (!byName.has(name)) byName.set(name, context);
  }
  const first = sources.certificates[0];
  // strict-sni (HAProxy's): no default certificate, so a client that names no host, or one no
  // certificate answers for, fails the handshake with an alert and never sees a certificate.
  const options = first && !settings.strictSni ? { ...base, cert: first.pem, key: first.pem } : base;
  if (options === base) createSecureContext(base); // the settings are checked even when no default certificate is given
  return {
    options,
    alpn: settings.alpn,
    sni(servername) {
      const name = servername.toLowerCase();
      const wildcard = name.includes('.') ? '*' + name.slice(name.indexOf('.')) : '';
      for (const key of [name, wildcard]) if (byName.has(key)) return byName.get(key);
      return undefined;
    },
  };
}
