import type { MatrixPart } from '../../proto/shard.js';
import type { ByteSource } from '../../worker/io/byte-source.js';
import { decodeFloats } from '../../worker/io/dtype.js';
import { matrixBlocks, readBlock } from '../../worker/matrix-histogram.js';

/**
 * The out-weights of nodes [colStart, colEnd) of a stacked matrix W [out, in], node-major
 * (node c's `out` weights contiguous, parts in stacking order), in a SharedArrayBuffer so
 * pool threads read them without a copy: the `groups` input of an nfd shard for a full NIN.
 * Read block by block with the same block plan as mfa's matrix shards. `into`, when large
 * enough, is reused: shared buffers are external memory that the collector frees late, so a
 * run allocating one per shard grew to 1.5 GB on a pythia-410m-shaped model.
 */
export async function matrixColumns(
  parts: readonly MatrixPart[],
  inputs: number,
  colStart: number,
  colEnd: number,
  sourceOf: (file: string) => Promise<ByteSource>,
  into?: Float64Array,
): Promise<{ weights: Float64Array; offsets: Uint32Array }> {
  const nodes = colEnd - colStart;
  const out = parts.reduce((a, p) => a + p.rows, 0);
  const weights = into && into.length >= nodes * out ? into.subarray(0, nodes * out) : new Float64Array(new SharedArrayBuffer(nodes * out * 8));
  const rowAt = parts.map((_, k) => parts.slice(0, k).reduce((a, p) => a + p.rows, 0));
  for (const b of matrixBlocks(parts, inputs, colStart, colEnd)) {
    const part = parts[b.part];
    const v = decodeFloats(part.dtype, await readBlock(await sourceOf(part.file), b));
    const rows = b.r1 - b.r0;
    if (part.transposed) {
      // Stored [in, out]: block rows are nodes, each a contiguous run of this part's rows.
      for (let r = 0; r < rows; r++) weights.set(v.subarray(r * part.rows, (r + 1) * part.rows), (b.r0 - colStart + r) * out + rowAt[b.part]);
    } else {
      // Stored [out, in]: block row r holds weight (row, node) for every node of the range.
      for (let r = 0; r < rows; r++) {
        const at = rowAt[b.part] + b.r0 + r;
        for (let c = 0; c < nodes; c++) weights[c * out + at] = v[r * nodes + c];
      }
    }
  }
  const offsets = new Uint32Array(nodes + 1);
  for (let c = 0; c <= nodes; c++) offsets[c] = c * out;
  return { weights, offsets };
}
