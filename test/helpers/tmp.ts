import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturesDir } from './shared.js';

/** A fresh directory under os.tmpdir(); call cleanup() in test.after.always / finally. */
export async function makeTmpDir(prefix = 'neuromfa-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A Hugging Face fixture checkpoint from shared/fixtures/hf (see its README). */
export function hfFixture(name: string): string {
  return join(fixturesDir, name);
}
