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

const cache = new Map<string, PowerTable>();

export function powerTable(q: Float64Array, maxN: number): PowerTable {
  const key = Array.from(q).join(',');
  const cached = cache.get(key);
  if (cached && cached.maxN >= maxN) return cached;
  const Q = q.length;
  // Grow geometrically: shards of one run ask for similar, slowly rising maxN.
  const size = Math.max(maxN, cached ? cached.maxN * 2 : 0, 256);
  const pos = new Float64Array((size + 1) * Q);
  const neg = new Float64Array((size + 1) * Q);
  for (let n = 1; n <= size; n++) {
    for (let k = 0; k < Q; k++) {
      pos[n * Q + k] = Math.pow(n, q[k]);
      neg[n * Q + k] = Math.pow(n, -q[k]);
    }
  }
  const table = { q: q.slice(), maxN: size, pos, neg };
  cache.set(key, table);
  return table;
}
