import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isCommit } from './cache.js';

/**
 * A file already downloaded by huggingface_hub: HF_HUB_CACHE/models--OWNER--NAME/snapshots/
 * COMMIT/FILE (a symlink into blobs/). Keyed by commit, like our cache, so it is the same
 * content; the size is checked too, since an interrupted download is not a valid file.
 */
export async function hfSnapshotFile(hfCacheDir: string, repo: string, commit: string, file: string, size: number): Promise<string | undefined> {
  if (!isCommit(commit)) return undefined;
  const path = join(hfCacheDir, `models--${repo.replace('/', '--')}`, 'snapshots', commit, ...file.split('/'));
  try {
    const s = await stat(path);
    return s.isFile() && s.size === size ? path : undefined;
  } catch {
    return undefined;
  }
}
