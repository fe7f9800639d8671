// Certificates for the HTTPS listener: PEM files holding a certificate and its key (marathon-lb's
// --ssl-certs). The first is the default; SNI picks another by its subject alternative names.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';

export interface Certificates {
  defaultContext: SecureContextOptions;
  sniCallback(servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void;
  names: string[];
}

export function loadCertificates(paths: readonly string[]): Certificates {
  const byName = new Map<string, SecureContext>();
  let defaultContext: SecureContextOptions | null = null;
  const names: string[] = [];
  for (const path of paths) {
    const pem = readFileSync(path, 'utf8');
    const options: SecureContextOptions = { cert: pem, key: pem };
    const context = createSecureContext(options); // throws on a file without a matching key
    defaultContext ??= options;
    const cert = new X509Certificate(pem);
    const altNames = (cert.subjectAltName ?? '').split(',').map((s) => s.trim()).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4).toLowerCase());
    const cn = /CN=([^\n,]+)/.exec(cert.subject)?.[1]?.toLowerCase();
    for (const name of altNames.length > 0 ? altNames : cn ? [cn] : []) {
      if (!byName.has(name)) byName.set(name, context);
      names.push(name);
    }
  }
  if (!defaultContext) throw new Error('--ssl-certs: no certificate given');
  return {
    defaultContext,
    names,
    sniCallback(servername, cb) {
      const name = servername.toLowerCase();
      const wildcard = name.includes('.') ? '*' + name.slice(name.indexOf('.')) : '';
      cb(null, byName.get(name) ?? byName.get(wildcard));
    },
  };
}
