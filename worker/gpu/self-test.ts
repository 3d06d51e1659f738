import { blockSumsProgram } from './block-sums-program.js';
import { GpuKernelError } from './errors.js';
import type { KernelRunner } from './gpujs-runner.js';
import { UNIT_ROUNDOFF_F32 } from './precision.js';
import { lcg } from '../kernel/lcg.js';

/**
 * What a backend must show before the registry calls it available: that its compiler kept
 * the Kahan compensation (a GLSL or SPIR-V compiler that reassociates float adds would
 * silently drop it) and that it computes a block sum to within a few ulp. Both on the real
 * block-sums program, with inputs chosen so that the answer is known exactly.
 */
export async function selfTest(runner: KernelRunner): Promise<void> {
  const block = 32;
  const program = blockSumsProgram(block);
  // Canary: one term 1, then 31 terms of 1.5·2^-25 each. Each is below half an ulp of 1,
  // so uncompensated float32 addition returns exactly 1; Kahan's sum keeps them all.
  const tiny = 1.5 * 2 ** -25;
  const canary = await runner.blockSums(program, {
    nAt: Float32Array.from({ length: block }, (_, i) => (i === 0 ? 1 : 2)),
    table: Float32Array.of(0, 1, tiny),
    inv: new Float32Array(block).fill(1),
    rows: 1,
    tableStride: 3,
    Q: 1,
    blocks: 1,
  });
  const exact = 1 + 31 * tiny;
  const got = canary[0][0][0];
  if (Math.abs(got - exact) > 2 * UNIT_ROUNDOFF_F32) {
    throw new GpuKernelError(`${runner.mode} loses float32 compensation: canary sum ${got}, expected ${exact} (the compiler reassociates float additions)`);
  }
  // A small random case against the same float32 inputs summed in float64.
  const rand = lcg(12345);
  const rows = 3;
  const Q = 5;
  const stride = 40;
  const blocks = 2;
  const nodes = blocks * block;
  const nAt = Float32Array.from({ length: nodes * rows }, () => 1 + Math.floor(rand() * (stride - 1)));
  const table = Float32Array.from({ length: Q * stride }, () => Math.exp(20 * (rand() - 0.5)));
  const inv = Float32Array.from({ length: nodes * Q }, () => Math.exp(20 * (rand() - 0.5)));
  const out = await runner.blockSums(program, { nAt, table, inv, rows, tableStride: stride, Q, blocks });
  for (let j = 0; j < blocks; j++) {
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < Q; k++) {
        let s = 0;
        for (let t = 0; t < block; t++) {
          const i = j * block + t;
          s += table[k * stride + nAt[i * rows + r]] * inv[i * Q + k];
        }
        const rel = Math.abs(out[j][r][k] / s - 1);
        if (!(rel <= 4 * UNIT_ROUNDOFF_F32)) {
          throw new GpuKernelError(`${runner.mode} block sum off by ${rel.toExponential(2)} relative at block ${j}, row ${r}, q ${k}`);
        }
      }
    }
  }
}
