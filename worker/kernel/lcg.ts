/**
 * A seeded linear congruential generator of uniforms in (0, 1): the same numbers every run,
 * for self-tests, benchmark inputs and test data (never for sampling: that is mt19937's job).
 */
export function lcg(seed: number): () => number {
  return () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
}
