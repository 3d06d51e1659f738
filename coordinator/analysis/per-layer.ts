import { NeuromfaError } from '../../proto/errors.js';
import type { MfaParams, MfaShardResult, ShardTask } from '../../proto/shard.js';
import type { Layout } from '../../worker/nin/layouts.js';
import { mergePartials, sumsOnGrid } from './merge.js';
import { spectrumFromSums, type Spectrum } from './spectrum.js';

/**
 * Per-layer spectra. The partition sums are additive over nodes (SPEC §5), so a block's
 * tau(q) comes from the sums of the shards holding its nodes: shards are cut at block
 * boundaries (a full-NIN shard is one matrix's column range, already inside one block), and
 * each block merges its own shards. The whole network merges all of them, as always.
 */

/** One block's spectrum in one sample, or why it has none (no node selected, one radius). */
export type BlockSpectrum = { block: number } & (Omit<Spectrum, 'q'> | { error: string });

/** The block of each full-NIN (matrix) task, by the tensor it reads. */
export function matrixTaskBlocks(tasks: readonly ShardTask[], layout: Layout): number[] {
  const byTensor = new Map<string, number>();
  layout.blocks.forEach((block, b) => {
    for (const st of block.stages) if (st.kind === 'matrix') for (const p of st.matrix.parts) byTensor.set(p.tensor, b);
  });
  return tasks.map((t) => (t.input.kind === 'matrix' ? byTensor.get(t.input.parts[0].tensor)! : -1));
}

/** Each block's spectrum from its own shards' sums, on its own radius grid (as `mfa` of its edges alone). */
export function blockSpectra(results: readonly MfaShardResult[], blocks: readonly number[], nBlocks: number, params: MfaParams): BlockSpectrum[] {
  return Array.from({ length: nBlocks }, (_, b) => {
    const mine = results.filter((_, i) => blocks[i] === b);
    try {
      const { q: _, ...s } = spectrumFromSums(mergePartials(mine, params.q.length), params);
      return { block: b, ...s };
    } catch (err) {
      if (!(err instanceof NeuromfaError)) throw err;
      return { block: b, error: err.message };
    }
  });
}

/** Each block's Z_q on the whole network's radius grid (blocks × radii × q): added over blocks they are the network's sums. */
export function blockSumsOnGrid(results: readonly MfaShardResult[], blocks: readonly number[], nBlocks: number, Q: number): { present: Int32Array; sums: Float64Array[] } {
  const { present } = mergePartials(results, Q);
  return { present, sums: Array.from({ length: nBlocks }, (_, b) => sumsOnGrid(results.filter((_, i) => blocks[i] === b), present, Q)) };
}
