import { openCheckpoint, type Checkpoint } from '../../worker/io/checkpoint.js';

/** Opens a checkpoint for the duration of `fn`, closing its files whatever happens. */
export async function withCheckpoint<T>(path: string, fn: (c: Checkpoint) => Promise<T>): Promise<T> {
  const c = await openCheckpoint(path);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}
