// How many CPUs the container may use, from its cgroup's CPU quota: Mesos and Docker limit a
// task's CPUs by quota, not by the CPUs it can see, so a Turbine given 2 CPUs on a 64-core agent
// would otherwise fork 64 workers (about 57 MB each), over its memory limit, to share 2 CPUs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/** CPUs as quota / period, rounded up; null when no quota is set (or none can be read). */
function quota(quotaText: string | null, periodText: string | null): number | null {
  const q = Number(quotaText);
  const p = Number(periodText);
  return Number.isFinite(q) && Number.isFinite(p) && q > 0 && p > 0 ? Math.max(1, Math.ceil(q / p)) : null;
}

/** The CPU limit of this process's cgroup (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), or null. `root`: where cgroups are mounted. */
export function cgroupCpuLimit(root = '/sys/fs/cgroup'): number | null {
  const max = read(join(root, 'cpu.max'));
  if (max !== null) {
    const [q, p] = max.split(/\s+/);
    return q === 'max' ? null : quota(q ?? null, p ?? null);
  }
  for (const dir of ['cpu', 'cpu,cpuacct']) {
    const limit = quota(read(join(root, dir, 'cpu.cfs_quota_us')), read(join(root, dir, 'cpu.cfs_period_us')));
    if (limit !== null) return limit;
  }
  return null;
}
