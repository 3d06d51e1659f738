import { UsageError } from '../../proto/errors.js';
import type { Layout } from './layouts.js';
import { legacyChoice, MT19937 } from './mt19937.js';

/** The sample sets of one sample index: per block, every named set (drawn and derived). */
export interface SamplePlan {
  sample: number;
  blocks: Array<Map<string, Int32Array>>;
  final: Int32Array;
}

/** Rejects a layer sample that a layer cannot supply, before any reading starts. */
export function checkLayerSample(layout: Layout, k: number): void {
  for (const draw of [...layout.blocks[0].draws, layout.final]) {
    if (draw.count > draw.n) {
      throw new UsageError(`--layer-sample ${k} is larger than a layer: set ${draw.name} draws ${draw.count} of ${draw.n} neurons`);
    }
  }
}

/** Plans already drawn, by what the draws depend on: the layout's draws and the sample index. */
const drawn = new Map<string, SamplePlan>();
/** Plans kept: an emergence series draws the same few samples for every checkpoint. */
const MAX_DRAWN = 64;

/**
 * Draws sample `s` as the reference does: one MT19937 stream seeded with s, blocks in order,
 * each block's draws in its listed order, the final output sample last. A plan depends only
 * on the layout's draws, so every checkpoint of a series shares its plans: they are drawn once
 * per process (a draw shuffles ~170k indices of pythia-410m, ~4 ms). Plans are never modified.
 */
export function drawPlan(layout: Layout, s: number): SamplePlan {
  const key = JSON.stringify([s, layout.final, layout.blocks.map((b) => [b.draws, b.derived])]);
  let plan = drawn.get(key);
  if (!plan) {
    plan = drawFresh(layout, s);
    if (drawn.size >= MAX_DRAWN) drawn.delete(drawn.keys().next().value!);
    drawn.set(key, plan);
  }
  return plan;
}

function drawFresh(layout: Layout, s: number): SamplePlan {
  const rng = new MT19937(s);
  const blocks = layout.blocks.map((block) => {
    const sets = new Map<string, Int32Array>();
    for (const d of block.draws) sets.set(d.name, legacyChoice(rng, d.n, d.count));
    for (const d of block.derived) {
      const parts = d.from.map(({ set, offset }) => sets.get(set)!.map((v) => v + offset));
      const all = new Int32Array(parts.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      sets.set(d.name, all);
    }
    return sets;
  });
  const final = legacyChoice(rng, layout.final.n, layout.final.count);
  return { sample: s, blocks, final };
}

/** The plan as the reference names it: `block{b}_{set}` (the query draw `t` is nums3). */
export function planRecord(plan: SamplePlan): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const last = plan.blocks.length - 1;
  plan.blocks.forEach((sets, b) => {
    for (const [name, v] of [...sets].sort(([a], [c]) => a.localeCompare(c))) if (name !== 't') out[`block${b}_${name}`] = Array.from(v);
    if (b === last) out[`block${b}_nums6`] = Array.from(plan.final);
  });
  return out;
}

/** The sets feeding stage output `y`: `next` is the following block's input sample. */
export function setFor(plan: SamplePlan, block: number, name: string): Int32Array {
  if (name === 'next') return block + 1 < plan.blocks.length ? plan.blocks[block + 1].get('nums1')! : plan.final;
  return plan.blocks[block].get(name)!;
}
