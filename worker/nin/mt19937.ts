/**
 * MT19937 exactly as NumPy's legacy `np.random.seed(int)` seeds it (`init_genrand`),
 * so sample sets reproduce the reference's bit for bit. Outputs are tempered a whole
 * state (624 words) at a time: a sample of pythia-410m shuffles ~170k indices, and a
 * call and a modulo per word were most of that.
 */
export class MT19937 {
  private readonly mt = new Uint32Array(624);
  /** Tempered outputs of the current state; `index` is the next to hand out. */
  private readonly out = new Uint32Array(624);
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
    if (this.index >= 624) this.refill();
    return this.out[this.index++];
  }

  /**
   * NumPy's `random_interval(max)`: outputs under the smallest all-ones mask covering max,
   * rejected until one is at most max.
   */
  interval(max: number): number {
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    const out = this.out;
    let v: number;
    do {
      if (this.index >= 624) this.refill();
      v = (out[this.index++] & mask) >>> 0;
    } while (v > max);
    return v;
  }

  private refill(): void {
    const mt = this.mt;
    // The twist in three runs, so no word needs a modulo.
    let i = 0;
    for (; i < 227; i++) mt[i] = twisted(mt[i], mt[i + 1], mt[i + 397]);
    for (; i < 623; i++) mt[i] = twisted(mt[i], mt[i + 1], mt[i - 227]);
    mt[623] = twisted(mt[623], mt[0], mt[396]);
    const out = this.out;
    for (let k = 0; k < 624; k++) {
      let y = mt[k];
      y ^= y >>> 11;
      y ^= (y << 7) & 0x9d2c5680;
      y ^= (y << 15) & 0xefc60000;
      y ^= y >>> 18;
      out[k] = y;
    }
    this.index = 0;
  }
}

function twisted(cur: number, after: number, far: number): number {
  const y = (cur & 0x80000000) | (after & 0x7fffffff);
  return far ^ (y >>> 1) ^ (-(y & 1) & 0x9908b0df);
}

/**
 * `np.random.choice(n, k, replace=False)` of the legacy RandomState: a full Fisher–Yates
 * shuffle of [0, n) from the top, then the first k.
 */
export function legacyChoice(rng: MT19937, n: number, k: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i >= 1; i--) {
    const j = rng.interval(i);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a.slice(0, k);
}
