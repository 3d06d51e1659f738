import { FileByteSource, type ByteSource } from './byte-source.js';

/**
 * Opens the weight file a matrix shard names. The one place a shard's file name becomes a
 * byte source, so remote names are handled once for the thread pool and the workers alike.
 */
export function openSource(file: string): Promise<ByteSource> {
  return FileByteSource.open(file);
}
