// What zdd.py (marathon-lb's blue/green deploy script) does with /haproxy?stats;csv, ported line
// for line, so tests read Turbine's CSV as zdd.py reads it.
import assert from 'node:assert/strict';

export type Listener = Record<string, string>;

/** parse_haproxy_stats: the header without '# ' and the trailing ',', each row without its last field. */
export function parseLikeZdd(csv: string): Listener[] {
  const rows = csv.split('\n').filter((r) => r !== '');
  const headings = rows.shift()!.replace(/^[# ]+/, '').replace(/[,\n]+$/, '').split(',');
  return rows.filter((r) => !r.startsWith('#')).map((r) => {
    const fields = r.split(',').slice(0, -1);
    assert.equal(fields.length, headings.length, r);
    return Object.fromEntries(headings.map((h, i) => [h, fields[i]!]));
  });
}

/** _if_app_listener: the servers of one backend, without its FRONTEND and BACKEND rows. */
export function appListeners(listeners: Listener[], pxname: string): Listener[] {
  return listeners.filter((l) => l.pxname === pxname && !['BACKEND', 'FRONTEND'].includes(l.svname!));
}

/** get_svnames_from_task for host networking: agent host, the IP it resolves to when that differs, each host port. */
export function svnamesLikeZdd(task: { host: string; ports: number[] }, resolvedIp: string): string[] {
  const prefix = task.host.replaceAll('.', '_');
  return task.ports.map((port) => (task.host === resolvedIp ? `${prefix}_${port}` : `${prefix}_${resolvedIp.replaceAll('.', '_')}_${port}`));
}

/** select_drained_listeners: in maintenance, nothing queued or in flight. */
export function drainedLikeZdd(listeners: Listener[]): Listener[] {
  return listeners.filter((l) => l.status === 'MAINT' && Number(l.qcur || 0) === 0 && Number(l.scur || 0) === 0);
}

/** find_drained_task_ids for one load balancer; `resolve` stands for zdd.py's gethostbyname. */
export function drainedTaskIdsLikeZdd(tasks: readonly { id: string; host: string; ports: number[] }[], listeners: Listener[], resolve: (host: string) => string): string[] {
  const drained = drainedLikeZdd(listeners);
  return tasks.filter((t) => drained.some((l) => l.svname === svnamesLikeZdd(t, resolve(t.host))[0])).map((t) => t.id);
}
