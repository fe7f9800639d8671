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

/** marathon-lb's server name: host with . as _, then the port (zdd.py rebuilds it from the task). */
export function serverName(backend: Pick<Backend, 'host' | 'port'>): string {
  return `${backend.host.replaceAll('.', '_').replaceAll(':', '_')}_${backend.port}`;
}

function line(values: Partial<Record<(typeof COLUMNS)[number], string | number>>): string {
  return `${COLUMNS.map((c) => String(values[c] ?? '')).join(',')},\n`;
}

export function renderHaproxyCsv(services: readonly Service[], stateOf: (service: Service, backend: Backend) => ServerState): string {
  let out = `# ${COLUMNS.join(',')},\n`;
  for (const service of services) {
    const pxname = backendName(service);
    out += line({ pxname, svname: 'FRONTEND', status: 'OPEN' });
    let scur = 0;
    let up = 0;
    for (const backend of service.backends) {
      const state = stateOf(service, backend);
      scur += state.scur;
      if (state.status === 'UP') up += 1;
      out += line({ pxname, svname: serverName(backend), qcur: state.qcur, scur: state.scur, status: state.status,
        weight: state.status === 'MAINT' ? 0 : 1, act: 1, bck: 0 });
    }
    out += line({ pxname, svname: 'BACKEND', scur, status: up > 0 ? 'UP' : 'DOWN', weight: up, act: up, bck: 0 });
  }
  return out;
}
