import { realpath } from 'node:fs/promises';
import { isAbsolute, resolve, sep } from 'node:path';
import { InputError } from '../proto/errors.js';

const inside = (root: string, p: string) => p === root || root === sep || p.startsWith(root + sep);

/**
 * The real path of `file` if it lies under the model root: relative paths are taken from
 * the root, absolute ones must point into it, `..` is refused outright, and the realpath
 * must stay inside (a symlink out is refused). The model store is mounted read-only, so the
 * path cannot change between this check and the thread opening it.
 */
export async function confinePath(root: { given: string; real: string }, file: string): Promise<string> {
  if (file === '' || file.includes('\0')) throw new InputError(`file name ${JSON.stringify(file)} refused: empty or holds a NUL byte`);
  if (file.split(/[\\/]/).includes('..')) throw new InputError(`${file}: paths with ".." are refused; this worker reads only under its --model-root`);
  const abs = isAbsolute(file) ? resolve(file) : resolve(root.real, file);
  if (!inside(root.given, abs) && !inside(root.real, abs)) throw new InputError(`${file}: outside this worker's --model-root, refused`);
  let real: string;
  try {
    real = await realpath(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`${file}: ${code === 'ENOENT' ? 'no such file under the --model-root' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`, { cause: err });
  }
  if (!inside(root.real, real)) throw new InputError(`${file}: resolves outside this worker's --model-root (a symbolic link out), refused`);
  return real;
}
