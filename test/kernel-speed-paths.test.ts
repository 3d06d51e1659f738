import test from 'ava';
import { createHash } from 'node:crypto';
import { boxMassFromGroups, type BoxMass } from '../worker/kernel/box-mass.js';
import { rint, type BucketParams } from '../worker/kernel/buckets.js';
import { lcg } from '../worker/kernel/lcg.js';
import { pairCounts, perHitCost, sumsFromCounts } from '../worker/kernel/pair-counts.js';
import { partitionSums, selectNodes, type PartitionPartial } from '../worker/kernel/partition-sums.js';

/**
 * The fast kernel paths against straightforward references written from SPEC §3–§5: box
 * masses exactly, partition sums to 1e-12 relative, on random shards of many shapes — the
 * counting path forced on every shape, partitionSums on whichever path it picks, and the
 * pick itself shown to go both ways.
 */

interface Shard {
  weights: Float64Array;
  offsets: Uint32Array;
  stride: number;
}

/** Weights of a trained layer: ~N(0, 0.02), a heavier-tailed share, and the odd special value. */
function randomShard(seed: number, nodes: number, minDegree: number, maxDegree: number, stride = 1, specials = true): Shard {
  const rand = lcg(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
  // Zero, non-finite, subnormal (d = Inf), |w| >= 1 (d <= 1), d = 150 and d = 2.5 exactly.
  const special = [0, -0, NaN, Infinity, -Infinity, 5e-324, 1, -1.5, 1 / 150, 0.4, -0.4];
  const offsets = new Uint32Array(nodes + 1);
  for (let i = 0; i < nodes; i++) offsets[i + 1] = offsets[i] + minDegree + Math.floor(rand() * (maxDegree - minDegree + 1));
  const weights = new Float64Array(offsets[nodes] * stride).fill(7);
  for (let e = 0; e < offsets[nodes]; e++) {
    const u = rand();
    weights[e * stride] = specials && u < 0.02 ? special[Math.floor(rand() * special.length)] : (u < 0.1 ? 0.06 : 0.02) * gauss();
  }
  return { weights, offsets, stride };
}

/** SPEC §3, node by node: kept distances in (1, T], their rint buckets sorted, runs counted. */
function referenceBox({ weights, offsets, stride }: Shard, p: BucketParams): BoxMass {
  const scale = 10 ** p.decimals;
  const buckets: number[] = [];
  const cum: number[] = [];
  const nodes = offsets.length - 1;
  const nodeOffsets = [0];
  const kept: number[] = [];
  let edges = 0;
  let skipped = 0;
  for (let i = 0; i < nodes; i++) {
    const mine: number[] = [];
    for (let e = offsets[i]; e < offsets[i + 1]; e++) {
      const w = weights[e * stride];
      if (w === 0) continue;
      if (!Number.isFinite(w)) {
        skipped++;
        continue;
      }
      edges++;
      const d = 1 / Math.abs(w);
      if (d > 1 && d <= p.threshold) mine.push(rint(d * scale));
    }
    mine.sort((a, b) => a - b);
    mine.forEach((b, j) => {
      if (j + 1 === mine.length || mine[j + 1] !== b) {
        buckets.push(b);
        cum.push(j + 1);
      }
    });
    kept.push(mine.length);
    nodeOffsets.push(buckets.length);
  }
  return {
    nodes,
    offsets: Uint32Array.from(nodeOffsets),
    buckets: Int32Array.from(buckets),
    cum: Uint32Array.from(cum),
    kept: Uint32Array.from(kept),
    edges,
    skippedNonFinite: skipped,
  };
}

/** SPEC §5 directly: S at each row = Σ over selected nodes of (N_i(b) / N_i)^q, from the box's meaning alone. */
function referenceSums(box: BoxMass, q: Float64Array, minNeighbors: number): PartitionPartial {
  const chosen: number[] = [];
  for (let i = 0; i < box.nodes; i++) if (box.kept[i] > minNeighbors) chosen.push(i);
  const all = new Set<number>();
  for (const i of chosen) for (let e = box.offsets[i]; e < box.offsets[i + 1]; e++) all.add(box.buckets[e]);
  const present = Int32Array.from([...all].sort((a, b) => a - b));
  const Q = q.length;
  const sums = new Float64Array((present.length + 1) * Q);
  const powers = new Map<number, number[]>();
  const term = (n: number, N: number) => {
    const key = n * 1e6 + N;
    let t = powers.get(key);
    if (!t) powers.set(key, (t = Array.from(q, (x) => Math.pow(n / N, x))));
    return t;
  };
  for (const i of chosen) {
    const N = box.kept[i] + 1;
    let e = box.offsets[i];
    let n = 1;
    for (let row = 0; row <= present.length; row++) {
      if (row > 0 && e < box.offsets[i + 1] && box.buckets[e] === present[row - 1]) n = 1 + box.cum[e++];
      const t = term(n, N);
      for (let k = 0; k < Q; k++) sums[row * Q + k] += t[k];
    }
  }
  return { selected: chosen.length, present, sums };
}

function worstRelative(a: Float64Array, b: Float64Array): number {
  let worst = a.length === b.length ? 0 : Infinity;
  for (let k = 0; k < a.length && k < b.length; k++) worst = Math.max(worst, Math.abs(a[k] - b[k]) / Math.abs(b[k]));
  return worst;
}

const grid = (from: number, to: number, step: number) => Float64Array.from({ length: Math.round((to - from) / step) + 1 }, (_, k) => from + k * step);
const grids: Record<string, Float64Array> = {
  default: grid(-3, 3, 0.1),
  uneven: Float64Array.of(-2.5, -1, -0.3, 0, 0.7, 2, 4),
  positive: grid(0.5, 4, 0.5),
  negative: Float64Array.of(-4, -2.2, -1, -0.25),
  zeroOnly: Float64Array.of(0),
  wide: grid(-10, 10, 2.5),
};

const shapes = [
  { name: 'degrees 1..300, decimals 0', shard: () => randomShard(1, 300, 1, 300), p: { threshold: 150, decimals: 0 }, m: 10 },
  { name: 'degree 1..12, decimals 1, stride 3', shard: () => randomShard(2, 800, 1, 12, 3), p: { threshold: 150, decimals: 1 }, m: 3 },
  { name: 'degree 40..80, decimals 2', shard: () => randomShard(3, 40, 40, 80), p: { threshold: 150, decimals: 2 }, m: 10 },
  { name: 'dense degree 16, decimals 0', shard: () => randomShard(4, 3000, 16, 16), p: { threshold: 150, decimals: 0 }, m: 2 },
  { name: 'minNeighbors 0, threshold 20', shard: () => randomShard(5, 200, 1, 30), p: { threshold: 20, decimals: 0 }, m: 0 },
  { name: 'wide grid (decimals 6, sorted per node)', shard: () => randomShard(6, 60, 1, 40), p: { threshold: 150, decimals: 6 }, m: 5 },
];

for (const { name, shard, p, m } of shapes) {
  test(`box masses equal the reference exactly: ${name}`, (t) => {
    const s = shard();
    const box = boxMassFromGroups(s.weights, s.offsets, p, s.stride);
    const want = referenceBox(s, p);
    t.deepEqual({ ...box, offsets: [...box.offsets], buckets: [...box.buckets], cum: [...box.cum], kept: [...box.kept] }, { ...want, offsets: [...want.offsets], buckets: [...want.buckets], cum: [...want.cum], kept: [...want.kept] });
    t.true(box.buckets instanceof Int32Array && box.cum instanceof Uint32Array);
  });

  test(`partition sums, both paths, within 1e-12 of the reference: ${name}`, (t) => {
    const s = shard();
    const box = boxMassFromGroups(s.weights, s.offsets, p, s.stride);
    for (const [label, q] of Object.entries(grids)) {
      const want = referenceSums(box, q, m);
      const got = partitionSums(box, q, m);
      t.is(got.selected, want.selected, label);
      t.deepEqual([...got.present], [...want.present], label);
      t.true(worstRelative(got.sums, want.sums) <= 1e-12, `${label}: partitionSums ${worstRelative(got.sums, want.sums)}`);
      const selection = selectNodes(box, m);
      if (selection.selected === 0) continue;
      const counts = pairCounts(box, selection, q, 0, Infinity);
      // Refused only on the decimals-6 grid, whose rows are too far apart for its bounded tables.
      t.is(counts === null, p.decimals === 6, label);
      if (!counts) continue;
      const counted = new Float64Array(want.sums.length);
      sumsFromCounts(counts, q, selection.maxN, counted);
      t.true(worstRelative(counted, want.sums) <= 1e-12, `${label}: counting ${worstRelative(counted, want.sums)}`);
    }
  });
}

test('every box-mass offset layout reads the same weights: groups starting past 0, stride 2', (t) => {
  const s = randomShard(7, 50, 1, 90, 2);
  const p = { threshold: 150, decimals: 1 };
  const whole = referenceBox(s, p);
  const tail = boxMassFromGroups(s.weights, s.offsets.subarray(20), p, 2);
  const want = referenceBox({ ...s, offsets: s.offsets.subarray(20) }, p);
  t.deepEqual([...tail.buckets], [...want.buckets]);
  t.deepEqual([...tail.cum], [...want.cum]);
  t.deepEqual([...tail.offsets], [...want.offsets]);
  t.is(tail.edges + referenceBox({ ...s, offsets: s.offsets.subarray(0, 21) }, p).edges, whole.edges);
});

test('empty shards and shards with no selected node give empty partials', (t) => {
  const p = { threshold: 150, decimals: 0 };
  const q = grids.default;
  const none = boxMassFromGroups(new Float64Array(0), Uint32Array.of(0), p);
  t.deepEqual({ nodes: none.nodes, hits: none.cum.length, edges: none.edges, skipped: none.skippedNonFinite }, { nodes: 0, hits: 0, edges: 0, skipped: 0 });
  const empty = partitionSums(none, q, 10);
  t.deepEqual({ selected: empty.selected, present: [...empty.present], sums: [...empty.sums] }, { selected: 0, present: [], sums: new Array(q.length).fill(0) });
  const zeros = boxMassFromGroups(new Float64Array(5), Uint32Array.of(0, 2, 5), p);
  t.deepEqual({ kept: [...zeros.kept], edges: zeros.edges, hits: zeros.cum.length }, { kept: [0, 0], edges: 0, hits: 0 });
  const s = randomShard(8, 40, 1, 8);
  const few = partitionSums(boxMassFromGroups(s.weights, s.offsets, p), q, 50);
  t.is(few.selected, 0);
  t.is(few.present.length, 0);
  t.is(few.sums.length, q.length);
});

test('the path choice goes both ways, by the shard', (t) => {
  const q = grids.default;
  const p = { threshold: 150, decimals: 0 };
  const pick = (s: Shard) => {
    const box = boxMassFromGroups(s.weights, s.offsets, p);
    const selection = selectNodes(box, 10);
    let hits = 0;
    for (let i = 0; i < box.nodes; i++) if (selection.isSelected[i]) hits += box.offsets[i + 1] - box.offsets[i];
    const counts = pairCounts(box, selection, q, hits, perHitCost(hits, q.length));
    // Whichever path, partitionSums agrees with the reference.
    t.true(worstRelative(partitionSums(box, q, 10).sums, referenceSums(box, q, 10).sums) <= 1e-12);
    return counts === null ? 'per hit' : 'counting';
  };
  // Many nodes with small N: few (n, N) pairs per row, many hits.
  t.is(pick(randomShard(9, 3000, 16, 16, 1, false)), 'counting');
  // A sampled NIN: few nodes of large, varied N: about one pair per node and row.
  t.is(pick(randomShard(10, 150, 32, 128, 1, false)), 'per hit');
});

test('counting is refused where its memory or range would not be bounded', (t) => {
  const p = { threshold: 150, decimals: 2 };
  // Large N over a wide grid: rows × pairs would pass the count matrix's bound.
  const s = randomShard(11, 40, 1500, 2500, 1, false);
  const box = boxMassFromGroups(s.weights, s.offsets, p);
  const selection = selectNodes(box, 10);
  t.true(selection.maxN > 1000);
  t.is(pairCounts(box, selection, grids.default, 0, Infinity), null);
  // Powers that could leave the float64 range: q = ±100 with N near 500 (500^100 > 1e269).
  const small = randomShard(12, 10, 600, 700, 1, false);
  const box0 = boxMassFromGroups(small.weights, small.offsets, { threshold: 150, decimals: 0 });
  t.true(selectNodes(box0, 10).maxN > 400);
  t.is(pairCounts(box0, selectNodes(box0, 10), Float64Array.of(-100, 0, 100), 0, Infinity), null);
  t.not(pairCounts(box0, selectNodes(box0, 10), grids.default, 0, Infinity), null);
});

test('per-hit partition sums are pinned bit for bit: taking a node\'s hits two at a time changed no bit', (t) => {
  const q = grids.default;
  /** Shards of trained-like weights, sizes drawn per node; all take the per-hit path. */
  const shard = (seed: number, nodes: number, lo: number, hi: number) => {
    const rand = lcg(seed);
    const offsets = new Uint32Array(nodes + 1);
    for (let i = 0; i < nodes; i++) offsets[i + 1] = offsets[i] + lo + Math.floor(rand() * (hi - lo + 1));
    const weights = new Float64Array(offsets[nodes]);
    for (let e = 0; e < weights.length; e++) weights[e] = (rand() - 0.5) * (rand() < 0.2 ? 0.05 : 0.6);
    return { weights, offsets };
  };
  const digests = (
    [
      [1, 1500, 20, 60, 0],
      [2, 200, 1, 150, 1],
      [3, 60, 100, 400, 2],
    ] as const
  ).map(([seed, nodes, lo, hi, decimals]) => {
    const s = shard(seed, nodes, lo, hi);
    const box = boxMassFromGroups(s.weights, s.offsets, { threshold: 150, decimals });
    const selection = selectNodes(box, 10);
    let hits = 0;
    for (let i = 0; i < box.nodes; i++) if (selection.isSelected[i]) hits += box.offsets[i + 1] - box.offsets[i];
    t.is(pairCounts(box, selection, q, hits, perHitCost(hits, q.length)), null, `shard ${seed} takes the per-hit path`);
    const { sums } = partitionSums(box, q, 10);
    return createHash('sha256').update(new Uint8Array(sums.buffer, sums.byteOffset, sums.byteLength)).digest('hex').slice(0, 16);
  });
  // From the build before the pairing (2c4d586), where each hit was summed on its own.
  t.deepEqual(digests, ['fbfd95fc060fdabe', '24862e3336b07c4d', 'bdce2342cd2060bb']);
});
