// Request framing against llhttp, short run: 2,000 generated and mutated connections (every
// smuggling shape) through Turbine and into node:http; the long run is in test:system.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { describe as replay, runDifferential, SHAPES } from '../support/http-fuzz.js';

const SEED = Number(process.env.TURBINE_FUZZ_SEED ?? 20261125);

it(`Turbine forwards no request llhttp refuses and ends every request where llhttp does (seed ${SEED}, ${SHAPES.length} shapes)`, async () => {
  const verdict = await runDifferential(SEED, 2_000);
  assert.deepEqual(verdict.differences.map((d) => replay(SEED, d)), []);
  assert.deepEqual(verdict.backendClientErrors, [], 'the backend received bytes it could not parse');
});
