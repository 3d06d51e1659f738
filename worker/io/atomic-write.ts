import { rename, rm, writeFile } from 'node:fs/promises';

/**
 * Writes to a temporary name beside the target, then renames: a failure or a kill never
 * leaves a half-written output under the real name.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
