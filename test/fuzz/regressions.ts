import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/shared.js';
import type { Regression } from './contract.js';

/** Every input that once broke a target, kept in the source tree (not dist/): test/fuzz/regressions. */
export const regressionsDir = join(repoRoot, 'test', 'fuzz', 'regressions');

export function loadRegressions(): Regression[] {
  return readdirSync(regressionsDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(regressionsDir, f), 'utf8')) as Regression);
}
