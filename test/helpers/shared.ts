import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest ancestor of this (compiled) file holding package.json. */
export const repoRoot = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test file');
    dir = up;
  }
  return dir;
})();

export const sharedDir = resolve(repoRoot, '..', 'shared');
export const conformanceDir = join(sharedDir, 'conformance');
export const fixturesDir = join(sharedDir, 'fixtures', 'hf');
export const cliPath = join(repoRoot, 'bin', 'neuromfa.js');

export function readJson<T = any>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** SPEC §7: within 1e-9, absolute or relative, whichever is larger. */
export function within(actual: number, expected: number, tol = 1e-9): boolean {
  return Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected));
}

/** The first index where two arrays differ beyond the tolerance, or -1. */
export function firstMismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-9): number {
  if (actual.length !== expected.length) return Math.min(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) if (!within(actual[i], expected[i], tol)) return i;
  return -1;
}
