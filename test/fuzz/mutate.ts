import fc from 'fast-check';

/**
 * Byte-level mutations of a valid seed, the way a corrupted download or a hand-edited file
 * differs from a good one: flipped bits, overwritten little-endian integers (lengths, offsets
 * and counts set to 0, -1, 2^31, 2^32-1 or random), truncation, inserted and duplicated runs.
 * Positions are taken modulo the current length, so every op applies to any seed.
 */
type Op =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'int'; at: number; width: 2 | 4 | 8; value: bigint }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'duplicate'; at: number; length: number; to: number };

const INTERESTING = [0n, 1n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant('int' as const),
    at: fc.nat(),
    width: fc.constantFrom(2 as const, 4 as const, 8 as const),
    value: fc.oneof(fc.constantFrom(...INTERESTING), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }), to: fc.nat() }),
);

function apply(seed: Uint8Array, ops: Op[]): Uint8Array {
  let b = seed;
  for (const o of ops) {
    const n = b.length;
    if (n === 0 && o.kind !== 'insert') continue;
    if (o.kind === 'flip') {
      b = b === seed ? b.slice() : b;
      b[o.at % n] ^= 1 << o.bit;
    } else if (o.kind === 'int') {
      b = b === seed ? b.slice() : b;
      const at = o.at % n;
      for (let i = 0; i < o.width && at + i < n; i++) b[at + i] = Number((o.value >> BigInt(8 * i)) & 0xffn);
    } else if (o.kind === 'truncate') {
      b = b.slice(0, o.at % n);
    } else if (o.kind === 'insert') {
      const at = n === 0 ? 0 : o.at % (n + 1);
      b = concat(b.subarray(0, at), o.bytes, b.subarray(at));
    } else {
      const at = o.at % n;
      const run = b.subarray(at, at + o.length);
      const to = o.to % (n + 1);
      b = concat(b.subarray(0, to), run, b.subarray(to));
    }
  }
  return b;
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** A seed with 1 to 6 mutations applied (and, now and then, the seed itself). */
export function mutationsOf(seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(op, { minLength: 0, maxLength: 6 })).map(([k, ops]) => apply(seeds[k], ops));
}

/** Mutated seeds most of the time, raw random bytes some of the time. */
export function bytesFrom(seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.oneof({ arbitrary: mutationsOf(seeds), weight: 9 }, { arbitrary: fc.uint8Array({ maxLength: 512 }), weight: 1 });
}

export const utf8 = (s: string) => new TextEncoder().encode(s);
