/**
 * n^q and n^-q for integer n and every q of the grid, n-major so the inner loop over q is
 * contiguous. (n/N)^q = n^q · N^-q: two loads and a multiply instead of a pow per term.
 * Cached per thread and grown on demand, since every shard of a run uses the same grid.
 */
export interface PowerTable {
  q: Float64Array;
  /** Largest n covered. */
  maxN: number;
  pos: Float64Array;
  neg: Float64Array;
}

let cached: PowerTable | undefined;

function sameGrid(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

export function powerTable(q: Float64Array, maxN: number): PowerTable {
  if (cached && cached.maxN >= maxN && sameGrid(cached.q, q)) return cached;
  const Q = q.length;
  const size = Math.max(maxN, cached && sameGrid(cached.q, q) ? cached.maxN * 2 : 0, 256);
  const pos = new Float64Array((size + 1) * Q);
  const neg = new Float64Array((size + 1) * Q);
  for (let n = 1; n <= size; n++) {
    for (let k = 0; k < Q; k++) {
      pos[n * Q + k] = Math.pow(n, q[k]);
      neg[n * Q + k] = Math.pow(n, -q[k]);
    }
  }
  cached = { q: q.slice(), maxN: size, pos, neg };
  return cached;
}
