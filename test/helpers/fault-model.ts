import { join } from 'node:path';
import { writeSyntheticNeox } from '../../coordinator/demo/synthetic-neox.js';
import { runCli } from './run-cli.js';
import { makeTmpDir } from './tmp.js';

export interface FaultModel {
  dir: string;
  cleanup: () => Promise<void>;
  model: string;
  /** The embedded run's answer: what every faulted run must end with. */
  embedded: { samples: unknown; stats: { shards: number; edges: number } };
}

/**
 * The small full-NIN model the cluster fault tests run (hidden 256, 4 blocks, F16) and its
 * embedded answer, computed with `argsFor(model)` on one thread.
 */
export async function faultModel(prefix: string, argsFor: (model: string) => string[]): Promise<FaultModel> {
  const { dir, cleanup } = await makeTmpDir(prefix);
  const model = join(dir, 'model');
  await writeSyntheticNeox(model, { hidden: 256, blocks: 4, vocab: 64, dtype: 'F16', progress: 0.5, seed: 5 });
  const r = await runCli([...argsFor(model), '--threads', '1']);
  if (r.code !== 0) throw new Error(r.stderr);
  return { dir, cleanup, model, embedded: JSON.parse(r.stdout) };
}
