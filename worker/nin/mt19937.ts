/**
 * MT19937 exactly as NumPy's legacy `np.random.seed(int)` seeds it (`init_genrand`),
 * so sample sets reproduce the reference's bit for bit.
 */
export class MT19937 {
  private readonly mt = new Uint32Array(624);
  private index = 624;

  constructor(seed: number) {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      // 1812433253 * prev mod 2^32 without losing bits to float64 rounding.
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  nextUint32(): number {
    if (this.index >= 624) this.twist();
    let y = this.mt[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < 624; i++) {
      const y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7fffffff);
      let v = mt[(i + 397) % 624] ^ (y >>> 1);
      if (y & 1) v ^= 0x9908b0df;
      mt[i] = v >>> 0;
    }
    this.index = 0;
  }
}

/** NumPy's `random_interval(max)`: rejection sampling under a bit mask. */
function interval(rng: MT19937, max: number): number {
  if (max === 0) return 0;
  let mask = max;
  mask |= mask >>> 1;
  mask |= mask >>> 2;
  mask |= mask >>> 4;
  mask |= mask >>> 8;
  mask |= mask >>> 16;
  mask >>>= 0;
  let v: number;
  do {
    v = (rng.nextUint32() & mask) >>> 0;
  } while (v > max);
  return v;
}

/**
 * `np.random.choice(n, k, replace=False)` of the legacy RandomState: a full Fisher–Yates
 * shuffle of [0, n) from the top, then the first k.
 */
export function legacyChoice(rng: MT19937, n: number, k: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i >= 1; i--) {
    const j = interval(rng, i);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a.slice(0, k);
}
