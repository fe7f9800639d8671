// Failure kinds, named once: the same words are used in code, logs and metric labels.
// bad-response: the backend answered, but not in HTTP Turbine can forward (framing, head syntax).
export type FailureKind = 'connect' | 'timeout' | 'reset' | 'bad-response' | 'no-backend' | 'maxconn';

const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CONNECT',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'ERR_TURBINE_TIMEOUT']);

/** Classifies an error from a backend socket or an undici dispatch into a failure kind. */
export function classifyBackendError(err: unknown): Exclude<FailureKind, 'no-backend' | 'maxconn'> {
  const code = (err as { code?: string } | null)?.code ?? '';
  if (CONNECT_CODES.has(code)) return 'connect';
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  return 'reset';
}
