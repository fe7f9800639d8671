// Request framing against llhttp, long run: 100,000 generated and mutated connections. Set
// TURBINE_FUZZ_SEED to replay a run; a failure prints the seed, the input and its bytes.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { describe as replay, runDifferential } from '../support/http-fuzz.js';

const SEED = Number(process.env.TURBINE_FUZZ_SEED ?? Date.now() % 1_000_000);
const COUNT = Number(process.env.TURBINE_FUZZ_COUNT ?? 100_000);

it(`${COUNT} fuzzed connections: no request llhttp refuses is forwarded, no boundary differs (seed ${SEED})`, { timeout: 900_000 }, async () => {
  const started = Date.now();
  const verdict = await runDifferential(SEED, COUNT, 64);
  process.stdout.write(`# differential: ${verdict.inputs} inputs in ${((Date.now() - started) / 1000).toFixed(0)} s; `
    + `${verdict.refusedByTurbineOnly} requests refused by Turbine only; ${verdict.differences.length} differences\n`);
  assert.deepEqual(verdict.differences.map((d) => replay(SEED, d)), []);
  assert.deepEqual(verdict.backendClientErrors, [], 'the backend received bytes it could not parse');
});
