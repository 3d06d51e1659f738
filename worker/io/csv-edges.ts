import { readFile } from 'node:fs/promises';
import { InputError } from '../../proto/errors.js';
import { checkNodeIds, edgesFromColumns, type EdgeList } from './edge-list.js';

/** Reads `src,dst,weight` lines; a first line that is not numeric is taken as a header. */
export async function readCsvEdges(path: string): Promise<EdgeList> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err });
  }
  const lines = text.split(/\r?\n/);
  let cap = 1024;
  let src = new Float64Array(cap);
  let dst = new Float64Array(cap);
  let w = new Float64Array(cap);
  let n = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const cells = line.split(',');
    const nums = cells.map((c) => Number(c.trim()));
    if (cells.length !== 3 || nums.some((v, j) => Number.isNaN(v) && !/^nan$/i.test(cells[j].trim()))) {
      if (n === 0 && i === lines.findIndex((l) => l.trim() !== '')) continue; // header
      throw new InputError(`${path}:${i + 1}: expected three numbers "src,dst,weight", got "${line.slice(0, 80)}"`);
    }
    if (n === cap) {
      cap *= 2;
      const grow = (a: Float64Array) => {
        const b = new Float64Array(cap);
        b.set(a);
        return b;
      };
      src = grow(src);
      dst = grow(dst);
      w = grow(w);
    }
    src[n] = nums[0];
    dst[n] = nums[1];
    w[n++] = nums[2];
  }
  const edges = edgesFromColumns(src.slice(0, n), dst.slice(0, n), w.slice(0, n));
  checkNodeIds(path, edges);
  return edges;
}
