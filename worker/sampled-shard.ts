import { hostname } from 'node:os';
import type { KernelBackend, MfaShardResult, SamplePartials, SampledShardResult, ShardResult, ShardTask } from '../proto/shard.js';
import type { Checkpoint } from './io/checkpoint.js';
import { checkLayerSample, drawPlan } from './nin/sample-plan.js';
import { sampleDigest } from './nin/sampled-digest.js';
import { runSampleShards } from './nin/sample-shards.js';
import { openModel, readSampledRows } from './nin/sampled-read.js';

export type SampledTask = Extract<ShardTask, { measure: 'sampled' }>;

export interface SampledShardDeps {
  /** Opens the model the shard names: an hf:// reference pinned to a commit, or a path under the model root. */
  open(model: string): Promise<Checkpoint>;
  /** Runs one node-range partial: the worker's thread pool. */
  run(task: ShardTask): Promise<ShardResult>;
}

/**
 * A sampled shard on a worker: the worker reads the rows its samples need with the read
 * planner (from its own disk or its own link to the hub), builds each sample's NIN, cuts it as
 * the embedded run does and computes the partials on its pool. Each sample's rows are read
 * once for all its samples; each sample's partials start as soon as it is built (runSampleShards).
 */
export async function runSampledShard(task: SampledTask, deps: SampledShardDeps): Promise<SampledShardResult> {
  const started = performance.now();
  const { model, layerSample, samples, shardsPerSample, perLayer } = task.input;
  const { ckpt, layout } = await openModel(model, layerSample, deps.open);
  try {
    checkLayerSample(layout, layerSample);
    const plans = samples.map((s) => drawPlan(layout, s));
    const cells = await readSampledRows(ckpt, layout, plans);
    const cut = { params: task.params, shardsPerSample, perLayer };
    const out = await runSampleShards(layout, plans, cells, cut, async (shards, plan): Promise<SamplePartials> => {
      const running = Promise.all(shards.tasks.map((t) => deps.run(t)));
      // Taken while the sample's partials run on the pool.
      const bytesSha256 = sampleDigest(layout, plan, cells);
      const partials = (await running) as MfaShardResult[];
      return { sample: plan.sample, bytesSha256, partials, ...(shards.blocks ? { blocks: shards.blocks } : {}) };
    });
    const all = out.flatMap((s) => s.partials);
    const sum = (f: (r: MfaShardResult) => number) => all.reduce((a, r) => a + f(r), 0);
    // A GPU that fell back on some partial is reported as f64: the sums are then f64's.
    const backends = new Set(all.map((r) => r.backend));
    const backend: KernelBackend = backends.size === 1 ? all[0].backend : 'f64';
    return {
      id: task.id,
      measure: 'sampled',
      backend,
      layout: layout.name,
      architecture: layout.architecture,
      blockCount: layout.blocks.length,
      worker: `${hostname()}:${process.pid}`,
      requests: ckpt.stats?.requests ?? 0,
      samples: out,
      nodes: sum((r) => r.nodes),
      edges: sum((r) => r.edges),
      skippedNonFinite: sum((r) => r.skippedNonFinite),
      bytesRead: ckpt.bytesRead(),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await ckpt.close();
  }
}
