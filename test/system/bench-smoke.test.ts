// The benchmarks still run (smoke mode: one short round each). Tests never assert timings: this
// checks that each bench finishes and prints its table with every row.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const BENCH = join(dirname(fileURLToPath(import.meta.url)), '../../bench');

describe('benchmarks in smoke mode', () => {
  for (const [file, rows] of [
    ['run.js', ['HTTP keep-alive, 100 B body', 'HTTP keep-alive, 64 KiB body', 'HTTP, new connection per request', 'TCP mode, 64 KiB responses',
      'HTTPS (TLS 1.3) keep-alive, 100 B body', 'WebSocket echo, 64 B messages', '| nginx ', '| Caddy ', 'slow reader through HAProxy', 'slow reader through Turbine']],
    ['convergence.js', ['| 1 ', '| 100 ']],
    ['scale.js', ['Turbine RSS once serving', 'full resync', 'one task event', 'events absorbed per second']],
    ['churn.js', ['300 ms', '0 ms']],
    ['metrics-merge.js', ['hand-made merge', 'AggregatorRegistry', 'same /metrics text both ways: yes']],
    ['ab.js', ['req/s vs HAProxy', '| 0: ', '| 1: ', '| HAProxy ']],
  ] as const) {
    it(`${file} --smoke prints its table`, () => {
      const r = spawnSync(process.execPath, [join(BENCH, file), '--smoke'], { encoding: 'utf8', timeout: 240_000 });
      assert.equal(r.status, 0, r.stderr);
      for (const row of rows) assert.ok(r.stdout.includes(row), `${row} missing from:\n${r.stdout}`);
      // A proxy that answers errors (a 421, a refused connection) would make a row measure the wrong thing: every count is 0.
      for (const line of r.stdout.split('\n').filter((l) => /\| [\d–]+\/[\d–]+\/[\d–]+\/[\d–]+ +\|$/.test(l))) {
        assert.match(line, /\| [0–]\/[0–]\/[0–]\/[0–] +\|$/, `errors in: ${line}`);
      }
    });
  }
});
