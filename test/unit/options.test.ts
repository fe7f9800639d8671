import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ConfigError, SPECS, loadOptions } from '../../src/config/options.js';

describe('options', () => {
  it('marathon-lb style flags: --marathon and --group repeat', () => {
    const { options } = loadOptions(['--marathon', 'http://m1:8080', '-m', 'http://m2:8080', '--group', 'external', '--group', 'internal', '--strict-mode'], {});
    assert.deepEqual(options.marathon, ['http://m1:8080', 'http://m2:8080']);
    assert.deepEqual(options.group, ['external', 'internal']);
    assert.equal(options.strictMode, true);
    assert.equal(options.healthCheck, true);
  });

  it('precedence is flag > env > file > default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'turbine-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ group: ['from-file'], httpPort: 8001, adminPort: 9001, appidPort: 9002 }));
    const { options } = loadOptions(['--config', file, '--http-port', '8003', '--marathon', 'http://m'], { TURBINE_HTTP_PORT: '8002', TURBINE_ADMIN_PORT: '9003' });
    assert.equal(options.httpPort, 8003);
    assert.equal(options.adminPort, 9003);
    assert.equal(options.appidPort, 9002);
    assert.deepEqual(options.group, ['from-file']);
    assert.equal(options.httpsPort, 443);
  });

  it('--no-health-check turns the default off', () => {
    assert.equal(loadOptions(['--group', 'x', '--no-health-check'], {}).options.healthCheck, false);
  });

  it('wrong values name the flag', () => {
    assert.throws(() => loadOptions(['--group', 'x', '--http-port', '99999'], {}), (e: Error) => e instanceof ConfigError && /--http-port/.test(e.message));
    assert.throws(() => loadOptions(['--group', 'x', '--marathon', 'not a url'], {}), /--marathon/);
    assert.throws(() => loadOptions(['--group', 'x', '--frobnicate'], {}), /--frobnicate: unknown flag/);
    assert.throws(() => loadOptions(['--group', 'x', '--log-level', 'loud'], {}), /--log-level/);
    assert.throws(() => loadOptions(['--marathon', 'http://m'], {}), /--group/);
    assert.throws(() => loadOptions(['--group', 'x', '--http-port'], {}), /--http-port: needs a value/);
    assert.throws(() => loadOptions(['--group', 'x'], { TURBINE_ADMIN_PORT: 'abc' }), /TURBINE_ADMIN_PORT/);
  });

  it('marathon-lb flags without meaning here are accepted and reported', () => {
    const loaded = loadOptions(['--group', 'x', '--sse', '--haproxy-config', '/etc/haproxy.cfg'], {});
    assert.deepEqual(loaded.ignoredFlags, ['--sse', '--haproxy-config']);
  });

  it('config/example.json names every option and loads as it is', () => {
    const path = join(dirname(fileURLToPath(import.meta.url)), '../../../config/example.json');
    const example = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(SPECS.map((s) => s.key).filter((k) => !(k in example)), []);
    const { options } = loadOptions(['--config', path], {});
    assert.deepEqual(options.marathon, example.marathon);
  });
});
