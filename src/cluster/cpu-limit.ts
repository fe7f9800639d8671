// How many CPUs the container may use, from its cgroup's CPU quota: Mesos and Docker limit a
// task's CPUs by quota, not by the CPUs it can see, so a Turbine given 2 CPUs on a 64-core agent
// would otherwise fork 64 workers (about 57 MB each), over its memory limit, to share 2 CPUs.
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/** CPUs as quota / period, rounded up; null when no quota is set (or none can be read). */
function quota(quotaText: string | null | undefined, periodText: string | null | undefined): number | null {
  const q = Number(quotaText);
  const p = Number(periodText);
  return Number.isFinite(q) && Number.isFinite(p) && q > 0 && p > 0 ? Math.max(1, Math.ceil(q / p)) : null;
}

/** `/a/b`, `/a`, `/`: a cgroup and those above it, each of which may limit it. */
function ancestors(path: string): string[] {
  const out = [path];
  while (path !== '/' && path !== '.') out.push((path = posix.dirname(path)));
  return out;
}

/**
 * The CPU limit of this process's cgroup: the lowest quota on its path from the mount point, in
 * cgroup v2 (`cpu.max`) or v1 (`cpu.cfs_quota_us`); null when none is set or none can be read.
 * The path comes from /proc/self/cgroup: `/` in a container with its own cgroup namespace, the
 * whole path without one (a systemd unit, `--cgroupns=host`).
 */
export function cgroupCpuLimit(root = '/sys/fs/cgroup', procCgroup = '/proc/self/cgroup'): number | null {
  const lines = (read(procCgroup) ?? '').split('\n').map((l) => l.split(':'));
  const unified = lines.find(([id]) => id === '0')?.[2] ?? '/';
  const v1 = lines.find(([, controllers]) => controllers?.split(',').includes('cpu'))?.[2] ?? '/';
  const limits: number[] = [];
  for (const dir of ancestors(unified)) {
    const [q, p] = (read(join(root, dir, 'cpu.max')) ?? '').split(/\s+/);
    const limit = q === 'max' ? null : quota(q, p);
    if (limit !== null) limits.push(limit);
  }
  for (const mount of ['cpu', 'cpu,cpuacct']) {
    for (const dir of ancestors(v1)) {
      const limit = quota(read(join(root, mount, dir, 'cpu.cfs_quota_us')), read(join(root, mount, dir, 'cpu.cfs_period_us')));
      if (limit !== null) limits.push(limit);
    }
  }
  return limits.length > 0 ? Math.min(...limits) : null;
}
