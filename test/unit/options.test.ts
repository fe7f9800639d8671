import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ConfigError, FOREIGN_FLAGS, SPECS, loadOptions } from '../../src/config/options.js';

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

  it('an unambiguous beginning of a long flag stands for it, as in marathon-lb\'s argparse (\`--health\` for \`--health-check\`); an ambiguous one is refused', () => {
    const { options } = loadOptions(['--marathon', 'http://m', '--group', 'external', '--strict', '--haproxy-m', '--dont-bind'], {});
    assert.equal(options.strictMode, true);
    assert.equal(options.haproxyMap, true);
    assert.equal(options.dontBindHttpHttps, true);
    assert.throws(() => loadOptions(['--group', 'x', '--timeout-c', '3'], {}), /--timeout-c: ambiguous flag, could be .*--timeout-connect.*--timeout-client/);
  });

  it('wrong values name the flag', () => {
    assert.throws(() => loadOptions(['--group', 'x', '--http-port', '99999'], {}), (e: Error) => e instanceof ConfigError && /--http-port/.test(e.message));
    assert.throws(() => loadOptions(['--group', 'x', '--marathon', 'not a url'], {}), /--marathon/);
    assert.throws(() => loadOptions(['--group', 'x', '--frobnicate'], {}), /--frobnicate: unknown flag/);
    assert.throws(() => loadOptions(['--group', 'x', '--log-level', 'loud'], {}), /--log-level/);
    assert.throws(() => loadOptions(['--marathon', 'http://m'], {}), /--group/);
    assert.throws(() => loadOptions(['--group', 'x', '--http-port'], {}), /--http-port: needs a value/);
    assert.throws(() => loadOptions(['--group', 'x'], { TURBINE_ADMIN_PORT: 'abc' }), /TURBINE_ADMIN_PORT/);
    // Longer than Node's longest timer, which would fire after 1 ms on every connection instead.
    assert.throws(() => loadOptions(['--group', 'x', '--timeout-tunnel', '2592000'], {}), /--timeout-tunnel.*at most 2147483/);
    assert.equal(loadOptions(['--group', 'x', '--timeout-tunnel', '2147483'], {}).options.timeoutTunnel, 2147483);
    assert.throws(() => loadOptions(['--group', 'x', '--maxconn', '0'], {}), /--maxconn: at least 1/);
  });

  it('marathon-lb flags without meaning here are accepted and reported once each, with the reason', () => {
    const loaded = loadOptions(['--group', 'x', '--sse', '--haproxy-config', '/etc/haproxy.cfg', '-s'], {});
    assert.deepEqual(loaded.ignoredFlags.map((f) => f.flag), ['--sse', '--haproxy-config']);
    assert.match(loaded.ignoredFlags[1]!.reason, /no HAProxy/);
  });

  it('every flag of marathon-lb that means nothing here is accepted, by each of its names, with its value', () => {
    for (const f of FOREIGN_FLAGS) {
      for (const name of [f.flag, ...(f.aliases ?? [])]) {
        const argv = ['-m', 'http://m:8080', '--group', 'x', name, ...(f.value ? ['some value'] : []), '--strict-mode'];
        const loaded = loadOptions(argv, {});
        assert.deepEqual(loaded.ignoredFlags.map((x) => x.flag), [f.flag], name);
        assert.equal(loaded.options.strictMode, true, `${name}: the next flag is still read`);
      }
    }
  });

  it("the Docker image's form: a leading sse word, several URLs after one -m", () => {
    const { options, ignoredFlags } = loadOptions(['sse', '-m', 'http://m1:8080', 'http://m2:8080', '--group', 'external'], {});
    assert.deepEqual(options.marathon, ['http://m1:8080', 'http://m2:8080']);
    assert.deepEqual(options.group, ['external']);
    assert.deepEqual(ignoredFlags, []);
  });

  it('a leading poll word is accepted and reported as not applicable; other words are refused', () => {
    const { ignoredFlags } = loadOptions(['poll', '--marathon', 'http://m', '--group', 'x'], {});
    assert.deepEqual(ignoredFlags.map((f) => f.flag), ['poll']);
    assert.throws(() => loadOptions(['--group', 'x', 'sse'], {}), /sse: unexpected argument/);
    assert.throws(() => loadOptions(['--marathon=http://a', 'http://b', '--group', 'x'], {}), /http:\/\/b: unexpected argument/);
  });

  it('-m takes several URLs, repeats, and mixes with commas', () => {
    const { options } = loadOptions(['-m', 'http://a', 'http://b', '--group', 'x', '--marathon', 'http://c,http://d'], {});
    assert.deepEqual(options.marathon, ['http://a', 'http://b', 'http://c', 'http://d']);
  });

  it("log levels in marathon-lb's spelling", () => {
    const level = (value: string) => loadOptions(['--group', 'x', '--log-level', value], {}).options.logLevel;
    assert.equal(level('DEBUG'), 'debug');
    assert.equal(level('INFO'), 'info');
    assert.equal(level('WARNING'), 'warn');
    assert.equal(level('ERROR'), 'error');
    assert.equal(level('CRITICAL'), 'fatal');
    assert.equal(level('NOTSET'), 'trace');
    assert.equal(loadOptions(['--group', 'x'], { TURBINE_LOG_LEVEL: 'Warning' }).options.logLevel, 'warn');
  });

  it("--log-format: json and pretty are Turbine's; marathon-lb's Python format string is accepted and has no effect", () => {
    assert.equal(loadOptions(['--group', 'x', '--log-format', 'pretty'], {}).options.logFormat, 'pretty');
    const loaded = loadOptions(['--group', 'x', '--log-format', '%(asctime)-15s %(name)s: %(message)s'], {});
    assert.equal(loaded.options.logFormat, 'json');
    assert.deepEqual(loaded.ignoredFlags.map((f) => f.flag), ['--log-format %(asctime)-15s %(name)s: %(message)s']);
    assert.throws(() => loadOptions(['--group', 'x'], { TURBINE_LOG_FORMAT: 'xml' }), /TURBINE_LOG_FORMAT/);
  });

  it('marathon-lb options with a meaning: backoff, map, https by vhost, IP-per-task port range', () => {
    const { options } = loadOptions(['--group', 'x', '--max-backoff', '120', '--haproxy-map', '--group-https-by-vhost',
      '--min-serv-port-ip-per-task', '20000', '--max-serv-port-ip-per-task', '20010'], {});
    assert.equal(options.maxBackoff, 120);
    assert.equal(options.haproxyMap, true);
    assert.equal(options.groupHttpsByVhost, true);
    assert.equal(options.minServPortIpPerTask, 20000);
    assert.equal(options.maxServPortIpPerTask, 20010);
    const defaults = loadOptions(['--group', 'x'], {}).options;
    assert.deepEqual([defaults.minServPortIpPerTask, defaults.maxServPortIpPerTask, defaults.haproxyMap], [10050, 10100, false]);
  });

  it('the IP-per-task range: min above max, or one of them 0, is refused; both 0 disables', () => {
    const range = (min: string, max: string) => loadOptions(['--group', 'x', '--min-serv-port-ip-per-task', min, '--max-serv-port-ip-per-task', max], {});
    assert.throws(() => range('10101', '10100'), /--min-serv-port-ip-per-task: 10101 is above --max-serv-port-ip-per-task 10100/);
    assert.throws(() => range('0', '10100'), /set both to 0/);
    assert.deepEqual([range('0', '0').options.minServPortIpPerTask, range('0', '0').options.maxServPortIpPerTask], [0, 0]);
    assert.equal(range('10100', '10100').options.maxServPortIpPerTask, 10100);
  });

  it("a Marathon URL's user info logs in as --auth-credentials (marathon-lb's requests does), and leaves the URL", () => {
    const { options } = loadOptions(['--marathon', 'http://ops:s%3Acret@m1:8080,http://m2:8080', '--group', 'x'], {});
    assert.deepEqual(options.marathon, ['http://m1:8080', 'http://m2:8080']);
    assert.equal(options.authCredentials, 'ops:s:cret');
    const given = loadOptions(['--marathon', 'http://ops:old@m1:8080', 'http://b:2@m2:8080/marathon', '--auth-credentials', 'ops:new', '--group', 'x'], {}).options;
    assert.equal(given.authCredentials, 'ops:new', 'given credentials win, over URLs naming different users too');
    assert.deepEqual(given.marathon, ['http://m1:8080', 'http://m2:8080/marathon'], 'and the URLs still lose their passwords');
    assert.throws(() => loadOptions(['--marathon', 'http://a:1@m1:8080', 'http://b:2@m2:8080', '--group', 'x'], {}), /--marathon: the URLs carry different credentials/);
    assert.equal(loadOptions(['--marathon', 'http://u:p%zz%41@m1:8080', '--group', 'x'], {}).options.authCredentials, 'u:p%zzA', 'a % that is no escape stays as written, as Python unquotes it');
    assert.equal(loadOptions(['--marathon', 'http://u:p%41%FF@m1:8080', '--group', 'x'], {}).options.authCredentials, 'u:pA\ufffd', 'bytes that are no UTF-8 become U+FFFD, as in Python');
    for (const spelling of ['http:/ops:pw@m1:8080', 'http:ops:pw@m1:8080']) {
      const odd = loadOptions(['--marathon', spelling, '--group', 'x'], {}).options;
      assert.equal(odd.authCredentials, 'ops:pw', spelling);
      assert.doesNotMatch(odd.marathon.join(), /pw/, `${spelling}: the password leaves the URL`);
    }
  });

  it('--dcos-auth-credentials also comes from DCOS_SERVICE_ACCOUNT_CREDENTIAL, as in marathon-lb', () => {
    const json = '{"uid":"svc","private_key":"...","login_endpoint":"https://leader.mesos/acs/api/v1/auth/login"}';
    assert.equal(loadOptions(['--group', 'x'], { DCOS_SERVICE_ACCOUNT_CREDENTIAL: json }).options.dcosAuthCredentials, json);
    assert.equal(loadOptions(['--group', 'x', '--dcos-auth-credentials', '/run/secret'], { DCOS_SERVICE_ACCOUNT_CREDENTIAL: json }).options.dcosAuthCredentials, '/run/secret');
  });

  it('--longhelp needs no other flag', () => {
    const loaded = loadOptions(['--longhelp'], {});
    assert.equal(loaded.longHelp, true);
  });

  it('config/example.json names every option and loads as it is', () => {
    const path = join(dirname(fileURLToPath(import.meta.url)), '../../../config/example.json');
    const example = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(SPECS.map((s) => s.key).filter((k) => !(k in example)), []);
    const { options } = loadOptions(['--config', path], {});
    assert.deepEqual(options.marathon, example.marathon);
  });
});
