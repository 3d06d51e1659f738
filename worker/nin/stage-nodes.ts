import type { Layout, NinMatrix, PassThrough } from './layouts.js';

/**
 * Where each NIN node lives. Node ids are those of sampledEdges (SPEC §2): stage s's input
 * neuron i is node x0(s) + i, x0 advancing by every stage's input count, pass-throughs
 * included; a sampled NIN keeps the full NIN's ids, so one table names both. Every source
 * node is the input of exactly one stage.
 */
export interface StageNodes {
  block: number;
  /** The stage's name inside its block: attn_in, attn_pass, attn_out, mlp_in, mlp_pass, mlp_out. */
  name: string;
  /** First node id; the stage's input neurons are [start, start + inputs). */
  start: number;
  inputs: number;
  stage: { kind: 'matrix'; matrix: NinMatrix } | { kind: 'pass'; pass: PassThrough };
}

export function stageNodes(layout: Layout): StageNodes[] {
  const out: StageNodes[] = [];
  let x0 = 0;
  layout.blocks.forEach((block, b) => {
    for (const st of block.stages) {
      const full = st.kind === 'matrix' ? st.matrix.name : st.pass.name;
      const inputs = st.kind === 'matrix' ? st.matrix.inputs : st.pass.inputs;
      out.push({ block: b, name: full.slice(full.indexOf('.') + 1), start: x0, inputs, stage: st.kind === 'matrix' ? { kind: 'matrix', matrix: st.matrix } : { kind: 'pass', pass: st.pass } });
      x0 += inputs;
    }
  });
  return out;
}

/** Node-id ranges [start, end) of each block: its stages' input neurons. */
export function blockNodeRanges(layout: Layout): Array<[number, number]> {
  const ranges: Array<[number, number]> = layout.blocks.map(() => [Infinity, -Infinity]);
  for (const s of stageNodes(layout)) {
    const r = ranges[s.block];
    r[0] = Math.min(r[0], s.start);
    r[1] = Math.max(r[1], s.start + s.inputs);
  }
  return ranges;
}

export interface NodeName {
  block: number;
  matrix: string;
  /** Index of the neuron among the stage's inputs (a column of W [out, in]). */
  neuron: number;
}

/** Names a node id; throws for an id past the last stage (the final outputs are no source). */
export function nodeNamer(stages: readonly StageNodes[]): (node: number) => NodeName {
  return (node) => {
    let lo = 0;
    let hi = stages.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (stages[mid].start <= node) lo = mid;
      else hi = mid - 1;
    }
    const s = stages[lo];
    if (node < s.start || node >= s.start + s.inputs) throw new RangeError(`node ${node} is no stage input`);
    return { block: s.block, matrix: s.name, neuron: node - s.start };
  };
}
