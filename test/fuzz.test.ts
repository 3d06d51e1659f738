import test from 'ava';
import fc from 'fast-check';
import { contractBroken, contractProperty } from './fuzz/contract.js';
import { loadRegressions } from './fuzz/regressions.js';
import { cleanupTargets, TARGETS } from './fuzz/targets.js';

/**
 * The fuzz targets of test/fuzz, bounded for CI: each target a fixed number of runs from a
 * fixed seed (well under a minute in all), then every input kept in test/fuzz/regressions.
 * `npm run fuzz` runs them for longer from a fresh seed.
 */
const SEED = 20_251_129;
const RUNS = 500;

test.after.always(() => cleanupTargets());

for (const target of TARGETS) {
  test(`fuzz ${target.name}: a typed error or a result, in bounded time and memory`, async (t) => {
    await fc.assert(contractProperty(target), { numRuns: RUNS, seed: SEED });
    t.pass();
  });
}

test('fuzz regressions: every input that once broke a parser keeps the contract', async (t) => {
  const regressions = loadRegressions();
  t.true(regressions.length >= 4, 'the kept inputs are found');
  for (const r of regressions) {
    const target = TARGETS.find((x) => x.name === r.target);
    if (!target) return t.fail(`${r.target}: no such target`);
    t.is(await contractBroken(target, Buffer.from(r.base64, 'base64')), undefined, `${r.target}: ${r.note}`);
  }
});
