// What each TLS listener serves, from the routing table and --ssl-certs: a service port with
// HAPROXY_{n}_SSL_CERT (or a `crt` in its BIND_OPTIONS) terminates TLS with it; the HTTPS listener
// answers SNI for an app's virtual hosts with that app's certificate (marathon-lb's
// --group-https-by-vhost), else with --ssl-certs. A listener's TlsServing is rebuilt only when a
// file or a label it depends on changed, so an unchanged one is the same object.
import { readPortTls, type LabelWarning } from '../routing/labels.js';
import type { Service } from '../routing/table.js';
import { serveTls, type CertificateFiles, type LoadedCertificate, type TlsServing, type TlsSettings, type TlsSources } from './tls.js';

/** marathon-lb's 443 frontend sets no bind options: Node's defaults, HTTP/1.1. */
const HTTPS_SETTINGS: TlsSettings = { ciphers: null, minVersion: null, maxVersion: null, honorCipherOrder: true, alpn: ['http/1.1'], strictSni: false };

/** A listener's TLS, or the warnings saying why it (or some of its virtual hosts) is not served. */
export interface TlsPlan {
  tls: TlsServing | null;
  warnings: LabelWarning[];
  /** Not served (fail closed): for the warnings, or for labels the routing table already warned of. */
  closed: boolean;
}

export class TlsListeners {
  private cache = new Map<string, { signature: string; tls: TlsServing }>();
  private roundKeys = new Set<string>();
  private roundPaths = new Set<string>();

  constructor(private readonly files: CertificateFiles, private readonly sslCerts: readonly string[]) {}

  /** Plans one set of listeners; what end() does not see planned is forgotten, files included. */
  begin(): void {
    this.roundKeys = new Set();
    this.roundPaths = new Set();
  }

  end(): void {
    for (const key of this.cache.keys()) if (!this.roundKeys.has(key)) this.cache.delete(key);
    this.files.retain(this.roundPaths);
  }

  /** Re-checks the certificate files; true when one changed and the listeners must be planned again. */
  refresh(): boolean {
    return this.files.refresh();
  }

  /** A service port: no TLS (tls null, no warnings), its TLS, or fail closed (tls null, a warning). */
  service(key: string, service: Service): TlsPlan {
    const { tls, refused } = readPortTls(service.sslCert, service.bindOptions);
    if (refused !== null) return { tls: null, warnings: [], closed: true };
    if (tls.certs.length === 0) return { tls: null, warnings: [], closed: false };
    const label = (path: string | null) => `HAPROXY_${service.portIndex}_${path !== null && path === service.sslCert ? 'SSL_CERT' : 'BIND_OPTIONS'}`;
    const refuse = (path: string | null, reason: string): TlsPlan =>
      ({ tls: null, warnings: [{ appId: service.appId, label: label(path), kind: 'malformed', reason: `${reason}: port ${key} not served` }], closed: true });
    const certificates: LoadedCertificate[] = [];
    for (const path of tls.certs) {
      const cert = this.certificate(path);
      if (cert instanceof Error) return refuse(path, cert.message);
      certificates.push(cert);
    }
    const settings: TlsSettings = {
      ciphers: tls.ciphers, minVersion: tls.minVersion, maxVersion: tls.maxVersion, honorCipherOrder: tls.honorCipherOrder,
      // An http-mode port parses HTTP/1.1 itself: nothing else can be offered (table.ts reports it).
      alpn: service.mode === 'http' ? ['http/1.1'] : tls.alpn ?? undefined,
      strictSni: tls.strictSni,
    };
    try {
      return { tls: this.serving(key, { certificates, vhosts: new Map() }, settings), warnings: [], closed: false };
    } catch (err) {
      return refuse(null, `TLS settings refused by OpenSSL (${(err as Error).message})`);
    }
  }

  /**
   * The HTTPS listener: null when it has nothing to serve (no --ssl-certs and no app certificate for
   * a virtual host). Throws when an --ssl-certs file never loaded (a startup error).
   */
  https(key: string, services: readonly Service[]): TlsPlan | null {
    const certificates = this.sslCerts.map((path) => {
      const cert = this.certificate(path);
      if (cert instanceof Error) throw new Error(`--ssl-certs: ${cert.message}`);
      return cert;
    });
    const vhosts = new Map<string, LoadedCertificate | null>();
    const warnings: LabelWarning[] = [];
    for (const service of services) {
      if (service.mode !== 'http' || service.vhosts.length === 0 || service.sslCert === null) continue;
      const cert = readPortTls(service.sslCert, service.bindOptions).refused !== null ? null : this.certificate(service.sslCert);
      if (cert instanceof Error) {
        warnings.push({ appId: service.appId, label: `HAPROXY_${service.portIndex}_SSL_CERT`, kind: 'malformed',
          reason: `${cert.message}: its virtual hosts are refused on the HTTPS listener ${key}` });
      }
      // Two apps on one virtual host (paths): the first in the table's order brings the certificate.
      for (const vhost of service.vhosts) if (!vhosts.has(vhost)) vhosts.set(vhost, cert instanceof Error ? null : cert);
    }
    if (certificates.length === 0 && vhosts.size === 0) return null;
    return { tls: this.serving(key, { certificates, vhosts }, HTTPS_SETTINGS), warnings, closed: false };
  }

  private certificate(path: string): LoadedCertificate | Error {
    this.roundPaths.add(path);
    return this.files.get(path);
  }

  private serving(key: string, sources: TlsSources, settings: TlsSettings): TlsServing {
    this.roundKeys.add(key);
    const signature = JSON.stringify([sources.certificates.map((c) => c.generation),
      [...sources.vhosts].map(([name, cert]) => [name, cert?.generation ?? null]), settings]);
    const cached = this.cache.get(key);
    if (cached?.signature === signature) return cached.tls;
    const tls = serveTls(sources, settings);
    this.cache.set(key, { signature, tls });
    return tls;
  }
}

/** The labels TLS listeners are planned from: when these change, the listeners are planned again. */
export function tlsInputs(services: readonly Service[]): string {
  return services.filter((s) => s.sslCert !== null || s.bindOptions !== null)
    .map((s) => `${s.id}|${s.mode}|${s.sslCert}|${s.bindOptions}|${s.vhosts.join(',')}|${s.bindAddr}|${s.servicePort}`).join('\n');
}
