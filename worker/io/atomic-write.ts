import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InputError } from '../../proto/errors.js';

/**
 * Writes to a temporary name beside the target, then renames: a failure or a kill never
 * leaves a half-written output under the real name. A failure is an InputError naming the
 * target (a missing or read-only output directory is the user's input, not a crash).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  // Unique per write, not only per process: pool threads share the pid and may write the same path.
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? `the directory ${dirname(path)} does not exist` : (err as Error).message;
    throw new InputError(`${path}: cannot write the output (${why})`, { cause: err });
  }
}
