import { InputError } from '../proto/errors.js';
import type { BackendFallback, ShardResult, ShardTask } from '../proto/shard.js';
import { F64, type PartitionBackend } from './gpu/backends.js';
import { boxMassFromCodeHistogram, boxMassFromCodeLists, boxMassFromGroups, type BoxMass } from './kernel/box-mass.js';
import { nodeFractalDimensions } from './kernel/nfd.js';
import type { ByteSource } from './io/byte-source.js';

export interface ExecuteOptions {
  /** How a matrix shard opens a weight file; workers use it to confine paths. */
  open?: (file: string) => Promise<ByteSource>;
  /** Where mfa shards compute their partition sums (worker/gpu pickBackend). @default F64, the float64 kernel */
  partitionBackend?: PartitionBackend;
  /** Told when the backend failed on this shard and it was computed on f64 instead. */
  onFallback?: (fallback: BackendFallback) => void;
}

/**
 * Computes one shard. Every execution path — the thread pool, a gRPC or NATS worker —
 * calls this function; there is no other copy of the math.
 */
export async function executeShard(task: ShardTask, options: ExecuteOptions = {}): Promise<ShardResult> {
  if (task.measure === 'sampled') {
    // It opens a checkpoint and runs its partials on a pool: a worker's main thread does (sampled-shard.ts).
    throw new InputError(`shard ${task.id} is a sampled shard: it runs through runSampledShard, not on a pool thread`);
  }
  const started = performance.now();
  const input = task.input;
  if (task.measure === 'nfd') {
    const { weights, offsets, stride } = task.input;
    const values = nodeFractalDimensions(weights, offsets, task.params, stride);
    let edges = 0;
    let skipped = 0;
    for (let e = 0; e < offsets[offsets.length - 1] * stride; e += stride) {
      const w = weights[e];
      if (w === 0) continue;
      if (Number.isFinite(w)) edges++;
      else skipped++;
    }
    return {
      id: task.id,
      measure: 'nfd',
      backend: 'f64',
      values,
      nodes: values.length,
      edges,
      skippedNonFinite: skipped,
      bytesRead: 0,
      seconds: (performance.now() - started) / 1000,
    };
  }
  let box: BoxMass;
  let bytesRead = 0;
  if (input.kind === 'groups') {
    box = boxMassFromGroups(input.weights, input.offsets, task.params, input.stride);
  } else {
    // Loaded by the first matrix shard: a thread running sampled or edge-list shards starts without them.
    const [{ matrixCodes }, { openSource }] = await Promise.all([import('./matrix-histogram.js'), import('./io/open-source.js')]);
    const from = input.inline ? { inline: input.inline } : { open: options.open ?? openSource };
    const { codes, bytesRead: read } = await matrixCodes(input.parts, input.inputs, input.colStart, input.colEnd, task.params, from);
    bytesRead = read;
    const nodes = input.colEnd - input.colStart;
    box = codes.kind === 'histogram' ? boxMassFromCodeHistogram(codes.hist, nodes, task.params) : boxMassFromCodeLists(codes.codes, nodes, codes.degree, task.params);
  }
  const backend = options.partitionBackend ?? F64;
  const partial = await backend.partitionSums(box, Float64Array.from(task.params.q), task.params.minNeighbors);
  // Only the shard where the device broke is news; later ones ('off') are counted by `backend`.
  if (partial.fallbackKind === 'failed') options.onFallback?.({ shard: task.id, backend: backend.name, reason: partial.fallbackReason! });
  return {
    id: task.id,
    measure: 'mfa',
    backend: partial.backend,
    selected: partial.selected,
    present: partial.present,
    sums: partial.sums,
    nodes: box.nodes,
    edges: box.edges,
    skippedNonFinite: box.skippedNonFinite,
    bytesRead,
    seconds: (performance.now() - started) / 1000,
  };
}
