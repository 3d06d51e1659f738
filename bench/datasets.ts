import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSyntheticNeox } from '../coordinator/demo/synthetic-neox.js';
import { npyEdgeBytes, readNpyEdges, writeNpyEdges } from '../worker/io/npy.js';
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

/** Source nodes × heavy-tailed out-weights, written source by source in increasing id. */
function heavyTailedEdges(nodes: number, degree: number, seed: number): Float64Array {
  const rows = new Float64Array(nodes * degree * 3);
  const rand = lcg(seed);
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
  return rows;
}

/** A 4M-edge edge list: 16,384 source nodes × 256 heavy-tailed out-weights. */
export function edges4m(log: (s: string) => void): Promise<string> {
  const path = join(dataDir, 'edges-4m.npy');
  return cached(path, () => writeNpyEdges(path, heavyTailedEdges(16384, 256, 99)), log);
}

/** A 4M-edge edge list shaped like a sampled NIN (issue #9): 62,500 source nodes of out-degree 64. */
export function edges4mDegree64(log: (s: string) => void): Promise<string> {
  const path = join(dataDir, 'edges-4m-degree64.npy');
  return cached(path, () => writeNpyEdges(path, heavyTailedEdges(62500, 64, 64)), log);
}

/**
 * The edges of edges4mDegree64 in the other layouts `mfa` reads: shuffled (no order: two passes),
 * NumPy's Fortran order (three columns) and CSV text.
 */
export async function edges4mDegree64As(layout: 'shuffled' | 'fortran' | 'csv', log: (s: string) => void): Promise<string> {
  const sorted = await edges4mDegree64(log);
  const path = join(dataDir, `edges-4m-degree64-${layout}.${layout === 'csv' ? 'csv' : 'npy'}`);
  return cached(
    path,
    async () => {
      const rows = (await readNpyEdges(sorted)).src;
      const E = rows.length / 3;
      if (layout === 'shuffled') {
        const rand = lcg(3);
        const row = new Float64Array(3);
        for (let i = E - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          row.set(rows.subarray(3 * i, 3 * i + 3));
          rows.copyWithin(3 * i, 3 * j, 3 * j + 3);
          rows.set(row, 3 * j);
        }
        return writeNpyEdges(path, rows);
      }
      if (layout === 'fortran') {
        const c = npyEdgeBytes(rows);
        const start = c.length - rows.byteLength;
        const header = Buffer.from(c.subarray(0, start)).toString('latin1').replace("'fortran_order': False", "'fortran_order': True ");
        const cols = new Float64Array(rows.length);
        for (let e = 0; e < E; e++) for (let k = 0; k < 3; k++) cols[k * E + e] = rows[3 * e + k];
        return writeFile(path, Buffer.concat([Buffer.from(header, 'latin1'), Buffer.from(cols.buffer)]));
      }
      const lines = new Array<string>(E);
      for (let e = 0; e < E; e++) lines[e] = `${rows[3 * e]},${rows[3 * e + 1]},${rows[3 * e + 2]}`;
      return writeFile(path, `src,dst,weight\n${lines.join('\n')}\n`);
    },
    log,
  );
}

/** Pythia-shaped GPT-NeoX checkpoints (float16, vocab 50304), weights half-way to heavy-tailed. */
export function pythiaShaped(name: string, hidden: number, blocks: number, log: (s: string) => void): Promise<string> {
  const dir = join(dataDir, name);
  return cached(join(dir, 'model.safetensors'), () => writeSyntheticNeox(dir, { hidden, blocks, vocab: 50304, dtype: 'F16', progress: 0.5, seed: 7 }), log).then(() => dir);
}
