import type { MfaParams, ShardTask } from '../../proto/shard.js';

export interface SampledTaskOptions {
  params: MfaParams;
  layerSample: number;
  shardsPerSample: number;
  perLayer: boolean;
}

/**
 * Sampled shards of one checkpoint: its samples in `pieces` contiguous runs (sizes differ by at
 * most one). One piece reads every row its samples share once; more pieces spread one
 * checkpoint over more workers' links, each reading the rows of its own samples.
 */
export function sampledTasks(model: string, samples: readonly number[], pieces: number, o: SampledTaskOptions, firstId = 0): ShardTask[] {
  const n = Math.max(1, Math.min(samples.length, Math.floor(pieces)));
  return Array.from({ length: n }, (_, k) => ({
    id: firstId + k,
    measure: 'sampled' as const,
    params: o.params,
    input: {
      kind: 'model' as const,
      model,
      layerSample: o.layerSample,
      samples: samples.slice(Math.floor((k * samples.length) / n), Math.floor(((k + 1) * samples.length) / n)),
      shardsPerSample: o.shardsPerSample,
      perLayer: o.perLayer,
    },
  }));
}
