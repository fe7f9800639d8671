// `GET /haproxy?stats;csv` as zdd.py reads it: one row per server of each backend (plus FRONTEND and
// BACKEND rows, which zdd.py skips), backends and servers named as marathon-lb names them, HAProxy's
// column order, and the trailing comma on every line (zdd.py drops each row's last field).
import type { Backend, Service } from '../routing/table.js';

export type ServerStatus = 'UP' | 'DOWN' | 'MAINT';

export interface ServerState {
  status: ServerStatus;
  /** Current sessions (connections or requests in flight); zdd.py waits for 0 before it kills a task. */
  scur: number;
  /** Queued requests. */
  qcur: number;
}

const COLUMNS = ['pxname', 'svname', 'qcur', 'qmax', 'scur', 'smax', 'slim', 'stot', 'bin', 'bout', 'dreq', 'dresp', 'ereq',
  'econ', 'eresp', 'wretr', 'wredis', 'status', 'weight', 'act', 'bck'] as const;

/** marathon-lb's backend name: the app id without its leading slash, / as _, then the service port. */
export function backendName(service: Pick<Service, 'appId' | 'servicePort'>): string {
  return `${service.appId.replace(/^\//, '').replaceAll('/', '_')}_${service.servicePort}`;
}

/**
 * marathon-lb's server name: the agent host Marathon names, the task's IP when it differs (a host
 * name resolved, or IP-per-task), and the port; every character outside [a-zA-Z0-9-] as _. zdd.py
 * (get_svnames_from_task) computes the same from the task to find its listeners.
 */
export function serverName(agentHost: string, backend: Pick<Backend, 'host' | 'port'>): string {
  const name = agentHost === '' || agentHost === backend.host ? `${backend.host}_${backend.port}` : `${agentHost}_${backend.host}_${backend.port}`;
  return name.replace(/[^a-zA-Z0-9-]/g, '_');
}

export interface CsvOptions {
  /** `;up`: only servers that are UP. */
  upOnly: boolean;
  /** `;no-maint`: no server in maintenance. */
  noMaint: boolean;
}

/**
 * HAProxy's stats query (`stats;csv;norefresh` and the like): null when it is not one; csv false
 * when the HTML page is asked for. Unknown options are ignored, as HAProxy ignores them.
 */
export function parseStatsQuery(query: string): ({ csv: boolean } & CsvOptions) | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(query);
  } catch {
    return null;
  }
  const [head, ...options] = decoded.split(';');
  if (head !== 'stats') return null;
  return { csv: options.includes('csv'), upOnly: options.includes('up'), noMaint: options.includes('no-maint') };
}

export interface CsvSources {
  state(service: Service, backend: Backend): ServerState;
  /** The agent host Marathon gave for the backend's task (`host` may be the IP it resolved to). */
  agentHost(backend: Backend): string;
}

function line(values: Partial<Record<(typeof COLUMNS)[number], string | number>>): string {
  return `${COLUMNS.map((c) => String(values[c] ?? '')).join(',')},\n`;
}

export function* renderHaproxyCsv(services: readonly Service[], sources: CsvSources, options: CsvOptions = { upOnly: false, noMaint: false }): Generator<string> {
  yield `# ${COLUMNS.join(',')},\n`;
  for (const service of services) {
    const pxname = backendName(service);
    let out = line({ pxname, svname: 'FRONTEND', status: 'OPEN' });
    let scur = 0;
    let up = 0;
    for (const backend of service.backends) {
      const state = sources.state(service, backend);
      scur += state.scur;
      if (state.status === 'UP') up += 1;
      if ((options.upOnly && state.status !== 'UP') || (options.noMaint && state.status === 'MAINT')) continue;
      out += line({ pxname, svname: serverName(sources.agentHost(backend), backend), qcur: state.qcur, scur: state.scur, status: state.status,
        weight: state.status === 'MAINT' ? 0 : 1, act: 1, bck: 0 });
    }
    yield out + line({ pxname, svname: 'BACKEND', scur, status: up > 0 ? 'UP' : 'DOWN', weight: up, act: up, bck: 0 });
  }
}
