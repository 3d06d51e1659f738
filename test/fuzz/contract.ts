import fc from 'fast-check';
import { NeuromfaError } from '../../proto/errors.js';
import type { FuzzTarget } from './targets.js';

/**
 * The contract every parser keeps on any input: it returns, or throws a NeuromfaError (a
 * typed error the CLI turns into one line and an exit code) — never a TypeError, RangeError or
 * stack overflow — and it does so in bounded time and memory. The time bound is a hang
 * detector, far above any real parse (the slow LONG4 decode is pinned by hostile-input's own test).
 */
// A hang, not a slow moment: the first inputs pay module loading and JIT, and a loaded CI
// machine stalls for seconds (5 s failed under a busy loop); a quadratic blow-up takes minutes.
export const MAX_RUN_MS = 30_000;
export const MAX_HEAP_BYTES = 1 << 30;

/** Why one run broke the contract, or undefined when it kept it. */
export async function contractBroken(target: FuzzTarget, bytes: Uint8Array): Promise<string | undefined> {
  const started = performance.now();
  try {
    await target.run(bytes);
  } catch (err) {
    if (!(err instanceof NeuromfaError)) return `${target.name}: threw ${(err as Error)?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)}`;
    if (err.message.includes('\n')) return `${target.name}: a ${err.name} message of several lines`;
  }
  const ms = performance.now() - started;
  if (ms > MAX_RUN_MS) return `${target.name}: took ${ms.toFixed(0)} ms on ${bytes.length} bytes`;
  const heap = process.memoryUsage().heapUsed;
  if (heap > MAX_HEAP_BYTES) return `${target.name}: heap at ${heap} bytes after ${bytes.length} input bytes`;
  return undefined;
}

/** The fast-check property of a target. */
export function contractProperty(target: FuzzTarget): fc.IAsyncProperty<[Uint8Array]> {
  return fc.asyncProperty(target.input, async (bytes) => {
    const broken = await contractBroken(target, bytes);
    if (broken) throw new Error(broken);
  });
}

/** A failing input as kept in test/fuzz/regressions/*.json. */
export interface Regression {
  target: string;
  /** What went wrong when it was found. */
  note: string;
  base64: string;
}
