import test from 'ava';
import { parseQGrid, parseSamples } from '../coordinator/cli/flags.js';
import { legacyChoice, MT19937 } from '../worker/nin/mt19937.js';
import { boxMassFromGroups } from '../worker/kernel/box-mass.js';
import { rint, weightCode, CODE_FIRST_BUCKET, CODE_NONFINITE, CODE_OUTSIDE, CODE_ZERO } from '../worker/kernel/buckets.js';
import { fitLine } from '../worker/kernel/least-squares.js';
import { partitionSums } from '../worker/kernel/partition-sums.js';
import { roundDecimal } from '../worker/kernel/round-decimal.js';
import { UsageError } from '../proto/errors.js';

test('MT19937 seeded as np.random.seed(0) gives NumPy\'s first outputs', (t) => {
  const rng = new MT19937(0);
  t.deepEqual([rng.nextUint32(), rng.nextUint32(), rng.nextUint32()], [2357136044, 2546248239, 3071714933]);
});

test('legacyChoice equals np.random.RandomState(s).choice(n, k, replace=False)', (t) => {
  t.deepEqual(Array.from(legacyChoice(new MT19937(12345), 1000, 10)), [144, 833, 270, 468, 962, 186, 942, 516, 286, 458]);
  const rng = new MT19937(7);
  t.deepEqual(Array.from(legacyChoice(rng, 5, 5)), [0, 3, 2, 1, 4]);
  t.deepEqual(Array.from(legacyChoice(rng, 3000, 4)), [2263, 2409, 502, 1802]);
});

test('rint rounds half to even, as NumPy', (t) => {
  t.deepEqual([0.5, 1.5, 2.5, 3.5, 2.4999999999999996, 7.5000000001, 150.5].map(rint), [0, 2, 2, 4, 2, 8, 150]);
});

test("roundDecimal is Python's round(x, p): exact value, ties to even", (t) => {
  t.deepEqual(
    [roundDecimal(0.125, 2), roundDecimal(0.375, 2), roundDecimal(2.675, 2), roundDecimal(1.005, 2), roundDecimal(12.345, 2), roundDecimal(0.0625, 3), roundDecimal(2.5, 0)],
    [0.12, 0.38, 2.67, 1.0, 12.35, 0.062, 2],
  );
});

test('weight codes: zero, non-finite, outside (1, T], and buckets', (t) => {
  const code = (w: number) => weightCode(w, 150, 1, 1);
  t.deepEqual([code(0), code(NaN), code(Infinity), code(-Infinity), code(1), code(2), code(1 / 150.4)], [CODE_ZERO, CODE_NONFINITE, CODE_NONFINITE, CODE_NONFINITE, CODE_OUTSIDE, CODE_OUTSIDE, CODE_OUTSIDE]);
  // d = 2.5 rounds to bucket 2 (half to even), d = 3.5 to 4; d just above 1 is bucket 1.
  t.deepEqual([code(0.4), code(-1 / 3.5), code(1 / 1.2), code(1 / 150)], [CODE_FIRST_BUCKET + 1, CODE_FIRST_BUCKET + 3, CODE_FIRST_BUCKET, CODE_FIRST_BUCKET + 149]);
});

test('box masses: distinct buckets with cumulative counts, non-finite weights counted', (t) => {
  // One node: distances 2, 2.5 (-> 2), 3, 1 (not kept), 200 (not kept), NaN, and a zero weight.
  const box = boxMassFromGroups(Float64Array.of(0.5, 0.4, -1 / 3, 1, 1 / 200, NaN, 0), Uint32Array.of(0, 7), { threshold: 150, decimals: 0 });
  t.deepEqual(Array.from(box.buckets), [2, 3]);
  t.deepEqual(Array.from(box.cum), [2, 3]);
  t.deepEqual(Array.from(box.kept), [3]);
  t.is(box.edges, 5);
  t.is(box.skippedNonFinite, 1);
});

test('partition sums of a hand-computed shard', (t) => {
  // Node A: radii {2, 2, 3} (N_D = 4); node B: radii {3} (N_D = 2); q = {-1, 0, 2}.
  const box = boxMassFromGroups(Float64Array.of(0.5, 0.5, 1 / 3, 1 / 3), Uint32Array.of(0, 3, 4), { threshold: 150, decimals: 0 });
  const q = Float64Array.of(-1, 0, 2);
  const { selected, present, sums } = partitionSums(box, q, 0);
  t.is(selected, 2);
  t.deepEqual(Array.from(present), [2, 3]);
  const term = (n: number, N: number) => Array.from(q, (x) => (n / N) ** x);
  const add = (a: number[], b: number[]) => a.map((v, i) => v + b[i]);
  const want = [add(term(1, 4), term(1, 2)), add(term(3, 4), term(1, 2)), add(term(4, 4), term(2, 2))].flat();
  sums.forEach((v, i) => t.true(Math.abs(v - want[i]) <= 1e-15 * Math.abs(want[i]), `sums[${i}] ${v} vs ${want[i]}`));
});

test('fitLine: slope, R^2 and the standard error of the slope', (t) => {
  const fit = fitLine([0, 1, 2, 3], [1, 3, 4, 7]);
  t.is(fit.slope, 1.9);
  t.true(Math.abs(fit.r2 - 0.9626666666666667) < 1e-15);
  t.true(Math.abs(fit.stderr! - 0.264575131106459) < 1e-15);
  t.is(fitLine([0, 1], [0, 1]).stderr, null);
});

test('q grids and sample lists', (t) => {
  const q = parseQGrid('-3:3:0.1');
  t.is(q.length, 61);
  t.deepEqual(q, Array.from({ length: 61 }, (_, n) => (n * 10 - 300) / 100));
  t.deepEqual(parseQGrid('-1,0,2.5'), [-1, 0, 2.5]);
  t.throws(() => parseQGrid('1,0'), { instanceOf: UsageError, message: '--q values must be strictly increasing, got "1,0"' });
  t.deepEqual(parseSamples('0-3,7,2'), [0, 1, 2, 3, 7]);
  t.throws(() => parseSamples('3-1'), { instanceOf: UsageError });
});

test('error classes: instanceof is specific, exit codes follow the class, wire round trip keeps the class', async (t) => {
  const { InputError, SafetensorsFormatError, AnalysisError, NeuromfaError, exitCodeFor, toWireError, fromWireError } = await import('../proto/errors.js');
  const input = new InputError('x');
  t.false(input instanceof UsageError);
  t.true(input instanceof NeuromfaError);
  t.true(new SafetensorsFormatError('y') instanceof InputError);
  t.deepEqual([new UsageError('u'), input, new AnalysisError('a'), new Error('e')].map(exitCodeFor), [2, 3, 3, 1]);
  const back = fromWireError(toWireError(new SafetensorsFormatError('bad header')));
  t.true(back instanceof SafetensorsFormatError);
  t.is(back.message, 'bad header');
});

test('emergence filters 0-3 and E with the initial checkpoint first', async (t) => {
  const { keepSample, emergenceCurve } = await import('../coordinator/analysis/emergence.js');
  const flat = { f: [-0.2, 0, -0.1], alpha: [1.2, 1.0, 0.9] };
  const fPos = { f: [-0.2, 0.05, -0.1], alpha: [1.2, 1.0, 0.9] };
  const rising = { f: [-0.2, 0, -0.1], alpha: [1.0, 1.02, 0.9] };
  t.deepEqual([0, 1, 2, 3].map((m) => [flat, fPos, rising].map((s) => keepSample(s, m as 0 | 1 | 2 | 3))), [
    [true, true, true],
    [true, false, true],
    [true, true, false],
    [true, false, false],
  ]);
  const sample = (sample: number, alpha0: number, width: number, f = flat.f) => ({ sample, alpha0, width, f, alpha: flat.alpha }) as never;
  const curve = emergenceCurve(
    [
      { label: 'a', model: 'a', samples: [sample(0, 1.5, 0.6), sample(1, 1.3, 0.4)] },
      { label: 'b', model: 'b', samples: [sample(0, 1.2, 0.5), sample(1, 1.0, 0.7, fPos.f)] },
    ],
    1,
  );
  t.is(curve[0].E, 0);
  t.deepEqual(curve[1].alpha0.samples, [0]);
  t.true(Math.abs(curve[1].E! - (0.5 / 0.5) * Math.log(1.4 / 1.2)) < 1e-15);
});
