import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
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
    const dir = dirname(path);
    const why = code === 'ENOENT' ? ((await kindAt(dir)) === 'dir' ? `${dir} does not accept new files` : `the directory ${dir} does not exist`) : (err as Error).message;
    throw new InputError(`${path}: cannot write the output (${why})`, { cause: err });
  }
}

type Kind = 'dir' | 'other' | undefined;

async function kindAt(path: string): Promise<Kind> {
  try {
    return (await stat(path)).isDirectory() ? 'dir' : 'other';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** The nearest existing ancestor of `path` (itself included) and what it is. */
async function nearestExisting(path: string): Promise<{ at: string; kind: Exclude<Kind, undefined>; missing: string[] }> {
  const missing: string[] = [];
  let at = resolve(path);
  for (;;) {
    const kind = await kindAt(at);
    if (kind) return { at, kind, missing };
    const up = dirname(at);
    if (up === at) throw new InputError(`${path}: no part of this path exists`);
    missing.unshift(at);
    at = up;
  }
}

const WHY: Record<string, string> = { EACCES: 'permission denied', EPERM: 'permission denied', EROFS: 'a read-only file system', ENOSPC: 'no space left' };

/**
 * Proves `dir` takes new files by creating and removing an empty one: access(2) says yes to
 * root on any directory, and /proc says yes and then refuses every file.
 */
async function probeWritable(dir: string, target: string): Promise<void> {
  const probe = join(dir, `.neuromfa-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await (await open(probe, 'wx')).close();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    throw new InputError(`${target}: cannot write the output there (${WHY[code] ?? (code === 'ENOENT' ? `${dir} does not accept new files` : (err as Error).message)})`, { cause: err });
  }
  await unlink(probe);
}

/**
 * Checks, before any work, that an output directory (--out DIR) can be created or written:
 * an existing file there, an unwritable parent or /proc is one line and exit 3 now, not after
 * the analysis (or, for /proc, never: Node's recursive mkdir loops there). Creates nothing.
 */
export async function checkOutputDirectory(dir: string): Promise<void> {
  const { at, kind, missing } = await nearestExisting(dir);
  if (kind !== 'dir') throw new InputError(missing.length === 0 ? `${dir}: exists and is not a directory; --out names a directory` : `${dir}: cannot be created, ${at} is not a directory`);
  await probeWritable(at, dir);
}

/** As checkOutputDirectory, for an output file: its directory must exist and take new files. */
export async function checkOutputFile(path: string): Promise<void> {
  const kind = await kindAt(path);
  if (kind === 'dir') throw new InputError(`${path}: is a directory; --out names a file`);
  const dir = dirname(path);
  const parent = await kindAt(dir);
  if (parent !== 'dir') throw new InputError(`${path}: cannot write the output (${parent ? `${dir} is not a directory` : `the directory ${dir} does not exist`})`);
  await probeWritable(dir, path);
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir spins forever on a path under /proc
 * (each level's ENOENT sends it back up). A failure is an InputError naming the directory.
 */
export async function makeDirectory(dir: string): Promise<void> {
  try {
    const { kind, at, missing } = await nearestExisting(dir);
    if (kind !== 'dir') throw new InputError(`${dir}: cannot create the output directory (${at} is not a directory)`);
    for (const d of missing) {
      try {
        await mkdir(d);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || (await kindAt(d)) !== 'dir') throw err;
      }
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    throw new InputError(`${dir}: cannot create the output directory (${WHY[code] ?? (err as Error).message})`, { cause: err });
  }
}
