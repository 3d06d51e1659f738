import type { KernelProgram } from './program.js';

/** Nodes summed by one kernel thread, in float32 with compensation; the host adds the blocks in float64. */
export const DEFAULT_BLOCK = 32;

/**
 * Thread (k, r, j) returns sum over the nodes i of block j of (n_i(r) / N_i)^q_k, as
 * table[k][n_i(r)] · inv[i][k] with table[k][n] = n^q_k and inv[i][k] = N_i^-q_k (both
 * float64 on the host, rounded to float32). Why a table and not exp(q·ln(n/N)): in
 * float32 the exponent q·ln(n/N) reaches 30 at N = 20481, q = 3, and its rounding alone
 * moves the power by ~2e-6 relative; a rounded table entry is off by at most 6e-8.
 *
 * All terms are positive (no differences of powers, so no cancellation); Kahan's
 * compensation keeps a block's sum within 2u of exact whatever its length. The running sum
 * passes through abs() (a no-op: it is positive) so that a shader compiler that reassociates
 * float additions cannot fold (s + y) - s - y to 0: NVIDIA's Vulkan driver did, and the
 * self-test's canary caught it (H200, driver 580.159, 2026-12-04); with abs() it holds there.
 * Arrays are flat and indexed by hand: gpu.js 2.24's cpu backend mis-indexes 2-D `input()` arguments
 * under dynamicArguments (it strides by the output's width). Every index stays below
 * 2^24, so it is exact even where a backend computes it in float32 (GLSL, WGSL).
 * Padding nodes have inv = 0 and n = 1: their terms are exactly 0.
 */
export function blockSumsProgram(block = DEFAULT_BLOCK): KernelProgram {
  return new BlockSumsProgram(block);
}

class BlockSumsProgram implements KernelProgram {
  readonly name = 'block-sums';
  readonly cacheKey: string;
  readonly constants: Readonly<Record<string, number>>;

  constructor(block: number) {
    if (!Number.isInteger(block) || block < 1 || block > 1024) throw new RangeError(`block must be an integer in [1, 1024], got ${block}`);
    this.cacheKey = `block-sums/v2/block=${block}`;
    this.constants = { block };
  }

  /** gpu.js parses this text (not a compiled function: tsc's output must not leak into kernels). */
  get source(): string {
    return `function blockSums(nAt, table, inv, rows, tableStride, qCount) {
  const k = this.thread.x;
  const r = this.thread.y;
  const j = this.thread.z;
  let s = 0.0;
  let c = 0.0;
  for (let t = 0; t < this.constants.block; t++) {
    const i = j * this.constants.block + t;
    const n = nAt[i * rows + r];
    const term = table[k * tableStride + n] * inv[i * qCount + k];
    const y = term - c;
    const u = Math.abs(s + y);
    c = (u - s) - y;
    s = u;
  }
  return s;
}`;
  }
}
