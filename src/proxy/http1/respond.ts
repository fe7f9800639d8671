// Answers Turbine writes itself (errors, redirects, refusals): one write, always framed by
// Content-Length so the connection can go on when the request allows it.
import { STATUS_CODES } from 'node:http';

export interface LocalResponse {
  status: number;
  text: string;
  /** Extra header lines as name/value pairs (Location, WWW-Authenticate, ...). */
  headers?: readonly (readonly [string, string])[];
}

/** The bytes of a local response; no body for HEAD. `close` adds Connection: close. */
export function localResponseBytes(response: LocalResponse, head: boolean, close: boolean): string {
  let out = `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? 'Unknown'}\r\n`;
  if (response.text !== '') out += 'content-type: text/plain; charset=utf-8\r\n';
  out += `content-length: ${Buffer.byteLength(response.text)}\r\ncache-control: no-store\r\n`;
  for (const [name, value] of response.headers ?? []) out += `${name}: ${value}\r\n`;
  if (close) out += 'connection: close\r\n';
  return `${out}\r\n${head ? '' : response.text}`;
}
