import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A fresh directory under os.tmpdir(); call cleanup() in test.after.always / finally. */
export async function makeTmpDir(prefix = 'neuromfa-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * The repository root, found by walking up from this file to package.json. Walking (rather
 * than a fixed '../..') works from both test/helpers/*.ts and the compiled dist/test/helpers/*.js.
 */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test helpers');
    dir = up;
  }
  return dir;
}

/** A Hugging Face fixture checkpoint from shared/fixtures/hf (see its README). */
export function hfFixture(name: string): string {
  return join(repoRoot(), '..', 'shared', 'fixtures', 'hf', name);
}
