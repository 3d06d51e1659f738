import type { ByteSource } from '../byte-source.js';
import { InputError } from '../../../proto/errors.js';
import type { BlobCache } from './cache.js';

/**
 * A remote file read through its range cache: a range already on disk is served from there,
 * anything else is fetched from `remote` (created on first need, so a fully cached run
 * makes no resolve request either) and written back. bytesRead counts every byte handed
 * out, cached or not, so reports agree between cold, warm and local runs.
 */
export class CachedByteSource implements ByteSource {
  bytesRead = 0;
  private remote?: ByteSource;

  constructor(
    readonly name: string,
    readonly size: number,
    private readonly blob: BlobCache | undefined,
    private readonly openRemote: () => ByteSource,
    /** Rows up to this many bytes apart share a request (ByteSource.coalesceGapBytes). */
    readonly coalesceGapBytes: number,
  ) {}

  /** Whether bytes [start, end) are in the range cache already. */
  async covers(start: number, end: number): Promise<boolean> {
    return (await this.blob?.covers(start, end)) ?? false;
  }

  async read(start: number, end: number, into?: Uint8Array): Promise<Uint8Array> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end > this.size || start > end) {
      throw new InputError(`${this.name}: read of bytes [${start}, ${end}) outside the file (${this.size} bytes)`);
    }
    let bytes: Uint8Array | undefined;
    if (this.blob && start < end && (await this.blob.covers(start, end))) bytes = await this.blob.read(start, end);
    if (!bytes) {
      this.remote ??= this.openRemote();
      bytes = await this.remote.read(start, end);
      await this.blob?.write(start, bytes);
    }
    this.bytesRead += bytes.length;
    if (!into) return bytes;
    into.set(bytes);
    return into;
  }

  async close(): Promise<void> {
    await Promise.all([this.blob?.close(), this.remote?.close()]);
  }
}
