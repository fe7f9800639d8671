// TLS clients for tests: what a browser or `openssl s_client` sees of a TLS listener.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type SecureVersion, type TLSSocket } from 'node:tls';
import { FIXTURES } from './fixtures.js';

/** A self-signed PEM (certificate and key) from test/fixtures/tls: `default`, `a` or `b` (.example.com). */
export function fixtureCert(name: 'default' | 'a' | 'b'): string {
  return join(FIXTURES, 'tls', `${name}.example.com.pem`);
}

export function fixtureCertText(name: 'default' | 'a' | 'b'): string {
  return readFileSync(fixtureCert(name), 'utf8');
}

export interface TlsOptions {
  /** SNI; none when omitted (as a client connecting to an IP address). */
  servername?: string;
  maxVersion?: SecureVersion;
  alpn?: string[];
}

export interface TlsResult {
  /** The certificate's common name, as the client saw it. */
  peer: string;
  /** Everything the server sent before it closed. */
  text: string;
  alpn: string | false;
}

/** Connects with TLS (trusting any certificate), writes `payload`, half-closes, and reads to the end. */
export function tlsRoundTrip(port: number, payload: string, options: TlsOptions = {}): Promise<TlsResult> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({
      host: '127.0.0.1', port, rejectUnauthorized: false,
      ...(options.servername ? { servername: options.servername } : {}),
      ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
      ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
    });
    const chunks: Buffer[] = [];
    let peer = '';
    let secured = false;
    socket.setTimeout(5000, () => socket.destroy(new Error('TLS round trip timed out')));
    socket.on('secureConnect', () => {
      secured = true;
      peer = String(socket.getPeerCertificate().subject?.CN ?? '');
      socket.end(payload);
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      // A listener that closes before any handshake (a plain one being swapped for TLS) is no TLS answer.
      if (!secured) reject(new Error('closed before the TLS handshake completed'));
      else resolve({ peer, text: Buffer.concat(chunks).toString('utf8'), alpn: socket.alpnProtocol ?? false });
    });
    socket.on('error', reject);
  });
}

/** An HTTP/1.1 GET over TLS; the response's status and JSON body (the demo backends echo what they saw). */
export async function httpsGet(port: number, host: string, options: TlsOptions = {}): Promise<{ peer: string; status: number; body: string }> {
  const res = await tlsRoundTrip(port, `GET / HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`, options);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(res.text)?.[1] ?? 0);
  const end = res.text.indexOf('\r\n\r\n');
  const chunked = /^transfer-encoding: *chunked/im.test(res.text.slice(0, end));
  return { peer: res.peer, status, body: chunked ? unchunk(res.text.slice(end + 4)) : res.text.slice(end + 4) };
}

function unchunk(text: string): string {
  let body = '';
  for (let at = 0; ;) {
    const line = text.indexOf('\r\n', at);
    const size = Number.parseInt(text.slice(at, line), 16);
    if (!(size > 0)) return body;
    body += text.slice(line + 2, line + 2 + size);
    at = line + 2 + size + 2;
  }
}
