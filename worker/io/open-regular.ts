import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { InputError } from '../../proto/errors.js';

/**
 * Opens a file for reading only if it is a regular file, without ever blocking: a FIFO under
 * --model-root used to block its shard in open() forever (and the worker then ignored
 * SIGTERM, waiting for that shard). O_NONBLOCK makes open() of a FIFO or device return at
 * once; fstat on the handle then refuses anything that is not a regular file. On a regular
 * file O_NONBLOCK changes nothing.
 */
export async function openRegularFile(path: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'a directory, not a file' : String((err as Error).message);
    throw new InputError(`${path}: ${why}`, { cause: err });
  }
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    throw new InputError(`${path}: not a regular file (${kindOf(stat)}); only regular files are read`);
  }
  return { handle, size: stat.size };
}

function kindOf(s: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  return 'a special file';
}

/** The whole of a small regular file (config.json, an index), refused above `maxBytes`. */
export async function readRegularFile(path: string, maxBytes: number): Promise<Uint8Array> {
  const { handle, size } = await openRegularFile(path);
  try {
    if (size > maxBytes) throw new InputError(`${path}: ${size} bytes, over the ${maxBytes}-byte limit for this file`);
    const out = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(out, done, size - done, done);
      if (bytesRead === 0) throw new InputError(`${path}: file shrank while reading (truncated at ${done})`);
      done += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}
