import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSyntheticNeox } from '../coordinator/demo/synthetic-neox.js';
import { writeNpyEdges } from '../worker/io/npy.js';
import { lcg } from '../worker/kernel/lcg.js';

/** Benchmark inputs, generated once into .bench-data/ (git-ignored) and reused. */
export const dataDir = join(process.cwd(), '.bench-data');

async function cached(path: string, make: () => Promise<void>, log: (s: string) => void): Promise<string> {
  if (!existsSync(path)) {
    log(`generating ${path} ...`);
    await mkdir(dataDir, { recursive: true });
    await make();
  }
  return path;
}

/** A 4M-edge edge list: 16,384 source nodes × 256 heavy-tailed out-weights. */
export function edges4m(log: (s: string) => void): Promise<string> {
  const path = join(dataDir, 'edges-4m.npy');
  return cached(
    path,
    async () => {
      const nodes = 16384;
      const degree = 256;
      const rows = new Float64Array(nodes * degree * 3);
      const rand = lcg(99);
      let j = 0;
      for (let i = 0; i < nodes; i++) {
        const scale = 0.01 * Math.exp(rand() - 0.5);
        for (let d = 0; d < degree; d++) {
          rows[j++] = i;
          rows[j++] = nodes + ((i * 7919 + d * 104729) % 65536);
          const u = rand() - 0.5;
          rows[j++] = -Math.sign(u) * Math.log(1 - 2 * Math.abs(u)) * scale;
        }
      }
      await writeNpyEdges(path, rows);
    },
    log,
  );
}

/** Pythia-shaped GPT-NeoX checkpoints (float16, vocab 50304), weights half-way to heavy-tailed. */
export function pythiaShaped(name: string, hidden: number, blocks: number, log: (s: string) => void): Promise<string> {
  const dir = join(dataDir, name);
  return cached(join(dir, 'model.safetensors'), () => writeSyntheticNeox(dir, { hidden, blocks, vocab: 50304, dtype: 'F16', progress: 0.5, seed: 7 }), log).then(() => dir);
}
