// The Prometheus alert rules pass the real promtool (Debian package prometheus): syntax, and unit
// tests that fire each alert on the series that should fire it and not on the others.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const RULES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../config/prometheus');

const promtool = (...args: string[]) => {
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.error, undefined, 'promtool must be installed (Debian package prometheus)');
  return r;
};

describe('Prometheus alert rules', () => {
  it('promtool check rules accepts config/prometheus/turbine-alerts.yml', () => {
    const r = promtool('check', 'rules', `${RULES}/turbine-alerts.yml`);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: 5 rules found/);
  });

  it('promtool test rules: each alert fires when it should, and only then', () => {
    const r = promtool('test', 'rules', `${RULES}/turbine-alerts.test.yml`);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});
