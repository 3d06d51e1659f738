import { mkdir } from 'node:fs/promises';
import { InputError } from '../../proto/errors.js';

/** Creates an --out directory (and its parents); failing is bad input naming the directory. */
export async function ensureOutDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new InputError(`${dir}: cannot create the output directory (${(err as Error).message})`, { cause: err });
  }
}
