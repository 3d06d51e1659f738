import { FileByteSource, type ByteSource } from './byte-source.js';
import { isHubRef } from './hub/ref.js';

/**
 * Opens the weight file a matrix shard names. The one place a shard's file name becomes a
 * byte source, so remote names are handled once for the thread pool and the workers alike:
 * `hf://OWNER/NAME@COMMIT/FILE` (a hub TensorInfo's source name) opens through the hub with
 * its caches (settings from the environment: HF_ENDPOINT, HF_TOKEN, NEUROMFA_CACHE).
 */
export async function openSource(file: string): Promise<ByteSource> {
  if (isHubRef(file)) {
    // Loaded on demand: local runs never pay for the HTTP client.
    const { openHubFile } = await import('./hub/open-hub-checkpoint.js');
    return openHubFile(file);
  }
  return FileByteSource.open(file);
}
