// The container's CPU quota, as cgroup v2 and v1 write it: --workers 0 forks one worker per CPU it may use.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cgroupCpuLimit } from '../../src/cluster/cpu-limit.js';

function cgroups(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'cgroup-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), `${text}\n`);
  }
  return root;
}

describe('cgroup CPU limit', () => {
  it('cgroup v2: quota over period, rounded up; "max" is no limit', () => {
    assert.equal(cgroupCpuLimit(cgroups({ 'cpu.max': '200000 100000' })), 2);
    assert.equal(cgroupCpuLimit(cgroups({ 'cpu.max': '150000 100000' })), 2);
    assert.equal(cgroupCpuLimit(cgroups({ 'cpu.max': '10000 100000' })), 1);
    assert.equal(cgroupCpuLimit(cgroups({ 'cpu.max': 'max 100000' })), null);
  });

  it('cgroup v1: cfs_quota_us over cfs_period_us, in cpu or cpu,cpuacct; -1 is no limit', () => {
    assert.equal(cgroupCpuLimit(cgroups({ 'cpu/cpu.cfs_quota_us': '400000', 'cpu/cpu.cfs_period_us': '100000' })), 4);
    assert.equal(cgroupCpuLimit(cgroups({ 'cpu,cpuacct/cpu.cfs_quota_us': '50000', 'cpu,cpuacct/cpu.cfs_period_us': '100000' })), 1);
    assert.equal(cgroupCpuLimit(cgroups({ 'cpu/cpu.cfs_quota_us': '-1', 'cpu/cpu.cfs_period_us': '100000' })), null);
  });

  it('no cgroup files: no limit', () => {
    assert.equal(cgroupCpuLimit(cgroups({})), null);
  });

  it("without a cgroup namespace: the process's own cgroup (from /proc/self/cgroup) and the lowest quota above it", () => {
    const v2 = cgroups({ 'proc-cgroup': '0::/system.slice/turbine.service', 'system.slice/turbine.service/cpu.max': '300000 100000', 'cpu.max': 'max 100000' });
    assert.equal(cgroupCpuLimit(v2, join(v2, 'proc-cgroup')), 3);
    const capped = cgroups({ 'proc-cgroup': '0::/kubepods/pod1', 'kubepods/pod1/cpu.max': '300000 100000', 'kubepods/cpu.max': '100000 100000' });
    assert.equal(cgroupCpuLimit(capped, join(capped, 'proc-cgroup')), 1);
    const v1 = cgroups({ 'proc-cgroup': '4:memory:/mesos/x\n3:cpu,cpuacct:/mesos/abc\n0::/', 'cpu,cpuacct/mesos/abc/cpu.cfs_quota_us': '200000', 'cpu,cpuacct/mesos/abc/cpu.cfs_period_us': '100000' });
    assert.equal(cgroupCpuLimit(v1, join(v1, 'proc-cgroup')), 2);
  });
});
