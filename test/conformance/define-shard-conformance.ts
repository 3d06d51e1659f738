import test from 'ava';
import { join } from 'node:path';
import { mergePartials } from '../../coordinator/analysis/merge.js';
import { openModel } from '../../coordinator/analysis/model-analysis.js';
import { spectrumFromSums } from '../../coordinator/analysis/spectrum.js';
import { groupBySource } from '../../worker/plan/edge-groups.js';
import { groupRanges, groupTasks, matrixTasks } from '../../worker/plan/shard-plan.js';
import { withInlineBytes } from '../../coordinator/plan/ship-bytes.js';
import { runShards } from '../../coordinator/run/run-shards.js';
import type { MfaParams, MfaShardResult, ShardResult, ShardTask } from '../../proto/shard.js';
import { InProcessBackend } from '../../worker/backends/in-process.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import { readNpyEdges } from '../../worker/io/npy.js';
import { conformanceDir, readJson } from '../helpers/shared.js';

/**
 * Write once, run on every backend (tfjs describeWithFlags): the same shards through the
 * backend under test and through the in-process kernel must give bit-identical results —
 * every shard's result, and the merged tau. No tolerance: the transports move bytes, they
 * must not touch a bit. The workloads are the conformance inputs:
 *  - the full NIN of gptneox/neox-f16-trained, 64 KB shards (column slices included), read
 *    by path under the worker's model root, and the same shards with their bytes inline;
 *  - the `heterogeneous` edge list (mfa, 5 shards) and `sparse-degrees` (nfd, 3 shards).
 */
export interface ShardWorkload {
  name: string;
  tasks: ShardTask[];
  /** For mfa workloads: merged and turned into a spectrum. */
  params?: MfaParams;
}

/** The model root a worker needs to read the path-based workloads. */
export const workloadRoot = conformanceDir;

let cached: Promise<ShardWorkload[]> | undefined;

export function shardWorkloads(): Promise<ShardWorkload[]> {
  cached ??= (async () => {
    const params: MfaParams = readJson(join(conformanceDir, 'cases', 'heterogeneous', 'expected.json')).params;
    const { ckpt, layout } = await openModel(join(conformanceDir, 'gptneox', 'neox-f16-trained'), 32);
    let full: ShardTask[];
    try {
      full = matrixTasks(layout.matrices, ckpt, params, 64 << 10);
    } finally {
      await ckpt.close();
    }
    const inline = await Promise.all(full.map((t) => withInlineBytes(t)));
    const hetero = groupBySource(await readNpyEdges(join(conformanceDir, 'cases', 'heterogeneous', 'edges.npy')));
    const sparse = groupBySource(await readNpyEdges(join(conformanceDir, 'cases', 'sparse-degrees', 'edges.npy')));
    return [
      { name: 'neox-f16-trained full NIN, read by path', tasks: full, params },
      { name: 'neox-f16-trained full NIN, bytes inline', tasks: inline, params },
      { name: 'heterogeneous edge list, mfa', tasks: groupTasks(hetero, groupRanges(hetero, 5), 'mfa', params), params },
      { name: 'sparse-degrees edge list, nfd', tasks: groupTasks(sparse, groupRanges(sparse, 3), 'nfd', { threshold: 200, decimals: 0 }) },
    ];
  })();
  return cached;
}

const timeless = (r: ShardResult) => ({ ...r, seconds: 0 });

/**
 * Registers one test per workload: `backend()` (read when the test runs, so a test.before
 * can start servers) against the in-process kernel. `only` picks workloads by name.
 */
export function defineShardConformance(label: string, backend: () => ShardBackend, o: { only?: RegExp } = {}): void {
  const reference = new InProcessBackend();
  const names = [
    'neox-f16-trained full NIN, read by path',
    'neox-f16-trained full NIN, bytes inline',
    'heterogeneous edge list, mfa',
    'sparse-degrees edge list, nfd',
  ].filter((n) => !o.only || o.only.test(n));
  for (const name of names) {
    test(`${label}: ${name} — bit-identical to in-process`, async (t) => {
      const w = (await shardWorkloads()).find((x) => x.name === name)!;
      const want = await runShards(w.tasks, reference);
      const got = await runShards(w.tasks, backend());
      t.is(got.length, want.length);
      t.deepEqual(got.map(timeless), want.map(timeless));
      if (w.params) {
        const Q = w.params.q.length;
        const a = spectrumFromSums(mergePartials(got as MfaShardResult[], Q), w.params);
        const b = spectrumFromSums(mergePartials(want as MfaShardResult[], Q), w.params);
        t.deepEqual(a.tau, b.tau);
        t.deepEqual(a, b);
      }
    });
  }
}
