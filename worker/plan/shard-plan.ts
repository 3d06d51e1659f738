import type { MatrixPart, MfaParams, NfdParams, ShardTask } from '../../proto/shard.js';
import type { Checkpoint } from '../io/checkpoint.js';
import { InputError } from '../../proto/errors.js';
import { isContiguous, requireFloatTensor } from '../io/safetensors.js';
import type { NinMatrix } from '../nin/layouts.js';
import type { EdgeGroups } from './edge-groups.js';

/**
 * Splits node-grouped edges into `count` contiguous node ranges of about equal edge count.
 * Shards own whole nodes (SPEC §5); their order is node order, so merging is deterministic.
 */
export function groupRanges(groups: EdgeGroups, count: number): Array<[number, number]> {
  const nodes = groups.nodes.length;
  const E = groups.offsets[nodes];
  const ranges: Array<[number, number]> = [];
  let start = 0;
  for (let s = 1; s <= count && start < nodes; s++) {
    const target = (E * s) / count;
    let end = start + 1;
    while (end < nodes && groups.offsets[end] < target) end++;
    if (s === count) end = nodes;
    ranges.push([start, end]);
    start = end;
  }
  return ranges;
}

export function groupTasks(groups: EdgeGroups, ranges: Array<[number, number]>, measure: 'mfa', params: MfaParams, firstId?: number): ShardTask[];
export function groupTasks(groups: EdgeGroups, ranges: Array<[number, number]>, measure: 'nfd', params: NfdParams, firstId?: number): ShardTask[];
export function groupTasks(groups: EdgeGroups, ranges: Array<[number, number]>, measure: 'mfa' | 'nfd', params: MfaParams | NfdParams, firstId = 0): ShardTask[] {
  return ranges.map(([a, b], k) => {
    const e0 = groups.offsets[a];
    const offsets = groups.offsets.slice(a, b + 1).map((o) => o - e0);
    const s = groups.stride;
    // A view on the shared buffer: threads read the weights without a copy.
    const input = { kind: 'groups' as const, weights: groups.weights.subarray(e0 * s, groups.offsets[b] * s), stride: s, offsets };
    return measure === 'mfa'
      ? { id: firstId + k, measure, params: params as MfaParams, input }
      : { id: firstId + k, measure, params: params as NfdParams, input };
  });
}

export const BYTES_PER_ELEMENT = { F64: 8, F32: 4, F16: 2, BF16: 2 } as const;

/**
 * Full-NIN shards: each matrix is cut into column ranges (nodes) of at most `targetBytes`
 * of weights, so shards are balanced by the bytes they read. A part names its file as its
 * source does (a path, or `hf://OWNER/NAME@COMMIT/FILE`): workers reopen it with openSource.
 */
export function matrixTasks(matrices: readonly NinMatrix[], ckpt: Checkpoint, params: MfaParams, targetBytes: number, firstId = 0): ShardTask[] {
  const tasks: ShardTask[] = [];
  for (const m of matrices) {
    const parts = matrixParts(m, ckpt);
    const columns = columnsPerShard(parts, targetBytes);
    for (let c = 0; c < m.inputs; c += columns) {
      tasks.push({
        id: firstId + tasks.length,
        measure: 'mfa',
        params,
        input: { kind: 'matrix', inputs: m.inputs, parts, colStart: c, colEnd: Math.min(m.inputs, c + columns) },
      });
    }
  }
  return tasks;
}

/** The stored parts of a layout matrix as shards name them. */
export function matrixParts(m: NinMatrix, ckpt: Checkpoint): MatrixPart[] {
  return m.parts.map((p) => {
    const t = ckpt.tensors.get(p.tensor)!;
    // Matrix shards stream row-major bytes; a strided view (.bin transposes) would be misread.
    if (!isContiguous(t)) throw new InputError(`${t.source.name}: tensor ${p.tensor} is a non-contiguous view; --full needs contiguous tensors (sampled analysis reads it fine)`);
    return { tensor: p.tensor, file: t.source.name, dataStart: t.start, dtype: requireFloatTensor(t), rows: p.rows, transposed: p.transposed };
  });
}

/** Columns (nodes) per full-NIN shard: as many as fit in `targetBytes` of stored weights, at least one. */
export function columnsPerShard(parts: readonly MatrixPart[], targetBytes: number): number {
  const bytesPerColumn = parts.reduce((a, p) => a + p.rows * BYTES_PER_ELEMENT[p.dtype], 0);
  return Math.max(1, Math.floor(targetBytes / bytesPerColumn));
}
