import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { contractProperty, type Regression } from './contract.js';
import { regressionsDir } from './regressions.js';
import { cleanupTargets, TARGETS } from './targets.js';

/**
 * `npm run fuzz [-- TARGET...]`: every target (or those named) for NEUROMFA_FUZZ_RUNS runs
 * (default 20,000) from NEUROMFA_FUZZ_SEED (default: the clock, printed). A failing input,
 * shrunk by fast-check, is written to test/fuzz/regressions/ so the test suite replays it
 * from then on; the run exits 1.
 */
const runs = Number(process.env.NEUROMFA_FUZZ_RUNS ?? 20_000);
const seed = Number(process.env.NEUROMFA_FUZZ_SEED ?? Date.now() % 2 ** 31);
const wanted = process.argv.slice(2);
const targets = wanted.length ? TARGETS.filter((t) => wanted.includes(t.name)) : TARGETS;
if (targets.length === 0) {
  console.error(`unknown target; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const target of targets) {
  const started = performance.now();
  const details = await fc.check(contractProperty(target), { numRuns: runs, seed });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (!details.failed) {
    console.log(`${target.name}: ${details.numRuns} runs, seed ${seed}, ${seconds} s: ok`);
    continue;
  }
  failed++;
  const [bytes] = details.counterexample!;
  const regression: Regression = { target: target.name, note: String((details.errorInstance as Error)?.message ?? details.errorInstance), base64: Buffer.from(bytes).toString('base64') };
  const file = join(regressionsDir, `${target.name}-${seed}.json`);
  writeFileSync(file, JSON.stringify(regression, null, 2) + '\n');
  console.log(`${target.name}: FAILED after ${details.numRuns} runs (seed ${seed}): ${regression.note}\n  kept as ${file}`);
}
await cleanupTargets();
process.exit(failed ? 1 : 0);
