import type { MfaShardResult, ShardResult, ShardTask } from '../../proto/shard.js';

/**
 * What a worker sends back must fit the task it was given; a result that does not is the
 * worker's fault (a bug, a version skew, corrupted memory) and is never merged.
 * Returns the problem, or null when the result is well formed.
 */
export function resultProblem(task: ShardTask, r: ShardResult): string | null {
  if (typeof r !== 'object' || r === null) return 'not an object';
  if (r.id !== task.id) return `answers shard ${String(r.id)} instead of ${task.id}`;
  if (r.measure !== task.measure) return `measure ${String(r.measure)} instead of ${task.measure}`;
  for (const k of ['nodes', 'edges', 'skippedNonFinite', 'bytesRead'] as const) {
    if (!Number.isSafeInteger(r[k]) || r[k] < 0) return `${k} is not a count`;
  }
  if (r.measure === 'nfd' || task.measure === 'nfd') {
    if (r.measure !== 'nfd' || !(r.values instanceof Float64Array) || r.values.length !== r.nodes) return 'values do not match the node count';
    return null;
  }
  const Q = task.params.q.length;
  if (r.measure === 'sampled' || task.measure === 'sampled') {
    if (r.measure !== 'sampled' || task.measure !== 'sampled' || !Array.isArray(r.samples)) return 'not a sampled result';
    if (r.samples.map((s) => s.sample).join() !== task.input.samples.join()) return `answers samples ${r.samples.map((s) => s.sample).join(',')} instead of ${task.input.samples.join(',')}`;
    for (const s of r.samples) {
      if (!/^[0-9a-f]{64}$/.test(s.bytesSha256)) return `sample ${s.sample}: bytesSha256 is not a sha256`;
      for (const p of s.partials) {
        const problem = mfaProblem(p, Q);
        if (problem) return `sample ${s.sample}: ${problem}`;
      }
    }
    return null;
  }
  return mfaProblem(r, Q);
}

function mfaProblem(r: MfaShardResult, Q: number): string | null {
  if (!Number.isSafeInteger(r.selected) || r.selected < 0 || r.selected > r.nodes) return 'selected is not a count of its nodes';
  if (!(r.present instanceof Int32Array) || !(r.sums instanceof Float64Array)) return 'present or sums has the wrong type';
  if (r.sums.length !== (r.present.length + 1) * Q) return `sums has ${r.sums.length} values, expected ${(r.present.length + 1) * Q}`;
  for (let k = 1; k < r.present.length; k++) if (!(r.present[k] > r.present[k - 1])) return 'present buckets are not ascending';
  for (const v of r.sums) if (!(v >= 0) || v === Infinity) return 'sums hold a negative or non-finite value';
  return null;
}
