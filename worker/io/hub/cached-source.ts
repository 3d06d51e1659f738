import { checkRange, type ByteSource } from '../byte-source.js';
import type { HttpByteSource } from '../http-byte-source.js';
import type { WantedRange } from '../ranged-read.js';
import type { BlobCache } from './cache.js';

/**
 * A remote file read through its range cache: a range already on disk is served from there,
 * anything else is fetched from `remote` (created on first need, so a fully cached run
 * makes no resolve request either) and written back. bytesRead counts every byte handed
 * out, cached or not, so reports agree between cold, warm and local runs.
 */
export class CachedByteSource implements ByteSource {
  bytesRead = 0;
  private remote?: HttpByteSource;

  constructor(
    readonly name: string,
    readonly size: number,
    private readonly blob: BlobCache | undefined,
    private readonly openRemote: () => HttpByteSource,
  ) {}

  /** Whether bytes [start, end) are in the range cache already. */
  async covers(start: number, end: number): Promise<boolean> {
    return (await this.blob?.covers(start, end)) ?? false;
  }

  async read(start: number, end: number, into?: Uint8Array): Promise<Uint8Array> {
    checkRange(this.name, this.size, start, end);
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

  /**
   * Cached ranges come from disk in planned blocks; the rest go to the remote's read
   * planner, and everything its requests bring (gaps read through included) is written to
   * the cache as it streams, so a rerun finds more than it asked for and memory holds only
   * the wanted bytes.
   */
  async readRanges(wanted: readonly WantedRange[]): Promise<void> {
    for (const w of wanted) checkRange(this.name, this.size, w.start, w.end);
    const cached: WantedRange[] = [];
    const missing: WantedRange[] = [];
    const covered = await this.blob?.coverage();
    for (const w of wanted) (covered?.(w.start, w.end) ? cached : missing).push(w);
    if (cached.length > 0 && !(await this.blob!.readRanges(this.name, cached))) missing.push(...cached.splice(0));
    missing.sort((a, b) => a.start - b.start);
    if (missing.length > 0) {
      this.remote ??= this.openRemote();
      const blob = this.blob;
      const done: Array<[number, number]> = [];
      await this.remote.readRanges(missing, blob && { chunk: (at, bytes) => blob.writeChunk(at, bytes), done: (s, e) => void done.push([s, e]) });
      await blob?.note(done);
    }
    for (const w of wanted) this.bytesRead += w.end - w.start;
  }

  async close(): Promise<void> {
    await Promise.all([this.blob?.close(), this.remote?.close()]);
  }
}
