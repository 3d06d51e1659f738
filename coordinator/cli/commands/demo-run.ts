import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSyntheticNeox } from '../../demo/synthetic-neox.js';
import type { CliContext } from '../context.js';
import type { CommandOptions } from './common.js';
import { run as runEmergence } from './emergence-run.js';

const STEPS = [0, 0.25, 0.5, 0.75, 1];

export async function run(ctx: CliContext, _args: string[], o: CommandOptions): Promise<void> {
  const dir = (o.dir as string | undefined) ?? (await mkdtemp(join(tmpdir(), 'neuromfa-demo-')));
  ctx.err(`writing ${STEPS.length} synthetic GPT-NeoX checkpoints (hidden 256, 6 blocks, float16) to ${dir}\n`);
  const models: string[] = [];
  for (const [i, progress] of STEPS.entries()) {
    const path = join(dir, `step${i}`);
    await writeSyntheticNeox(path, { hidden: 256, blocks: 6, vocab: 512, dtype: 'F16', progress, seed: 1234 + i });
    models.push(path);
  }
  ctx.err('running emergence over samples 0-9, layer sample 32 (embedded, thread pool)\n');
  const opts: CommandOptions = {
    labels: STEPS.map((_, i) => `step${i}`).join(','),
    filter: '0',
    samples: '0-9',
    layerSample: '32',
    threshold: '150',
    decimals: '0',
    minNeighbors: '10',
    q: '-3:3:0.1',
    shardMb: '32',
    threads: o.threads,
    out: join(dir, 'report'),
  };
  await runEmergence(ctx, models, opts);
}
