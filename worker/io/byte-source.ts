import type { FileHandle } from 'node:fs/promises';
import { InputError } from '../../proto/errors.js';
import { openRegularFile } from './open-regular.js';
import { preadFully, readFileRanges } from './file-ranges.js';
import { inLanes } from './in-lanes.js';
import type { WantedRange } from './ranged-read.js';

/**
 * Random access to the bytes of one file. Every reader (safetensors, .npy) goes through
 * this interface, so an HTTP implementation can be added without touching the math.
 */
export interface ByteSource {
  /** Human-readable location, used in error messages. */
  readonly name: string;
  readonly size: number;
  /** Bytes [start, end) — end is exclusive and must be <= size; into `into` when given. */
  read(start: number, end: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Total bytes handed out by read(), for the `bytesRead` statistic. */
  readonly bytesRead: number;
  /**
   * Where a request costs more than the bytes between two wanted rows (HTTP: a round trip is
   * worth ~1 MB at CDN speeds), how many unwanted bytes it would rather read than split a
   * request. Local files leave it unset: 0, adjacent rows only.
   */
  readonly coalesceGapBytes?: number;
  /**
   * Fills every wanted range (sorted, disjoint) with the requests the source's read planner
   * finds cheapest (read-plan.ts); counted in bytesRead as the wanted bytes. Sources without
   * it are read range by range (readRangesOf).
   */
  readRanges?(wanted: readonly WantedRange[]): Promise<void>;
  close(): Promise<void>;
}

/** Refuses a read of [start, end) that is not inside a source of `size` bytes. */
export function checkRange(name: string, size: number, start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end > size || start > end) {
    throw new InputError(`${name}: read of bytes [${start}, ${end}) outside the file (${size} bytes)`);
  }
}

/** Bytes read concurrently per source that cannot plan its own requests. */
const PLAIN_READS_IN_FLIGHT = 16;

/** `source.readRanges`, or one read per range where the source has no planner. */
export async function readRangesOf(source: ByteSource, wanted: readonly WantedRange[]): Promise<void> {
  if (source.readRanges) return source.readRanges(wanted);
  await inLanes(wanted.length, PLAIN_READS_IN_FLIGHT, async (k) => {
    const w = wanted[k];
    if (w.into) await source.read(w.start, w.end, w.into);
    else w.take(w.start, await source.read(w.start, w.end));
  });
}

export class FileByteSource implements ByteSource {
  bytesRead = 0;
  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<FileByteSource> {
    const { handle, size } = await openRegularFile(path);
    return new FileByteSource(path, size, handle);
  }

  async read(start: number, end: number, into?: Uint8Array): Promise<Uint8Array> {
    checkRange(this.name, this.size, start, end);
    const out = into ?? new Uint8Array(end - start);
    await preadFully(this.handle, this.name, out, start);
    this.bytesRead += out.length;
    return out;
  }

  async readRanges(wanted: readonly WantedRange[]): Promise<void> {
    for (const w of wanted) checkRange(this.name, this.size, w.start, w.end);
    await readFileRanges(this.handle, this.name, wanted);
    for (const w of wanted) this.bytesRead += w.end - w.start;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

export class MemoryByteSource implements ByteSource {
  bytesRead = 0;
  constructor(
    readonly name: string,
    private readonly bytes: Uint8Array,
  ) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(start: number, end: number, into?: Uint8Array): Promise<Uint8Array> {
    if (start < 0 || end > this.size || start > end) {
      throw new InputError(`${this.name}: read of bytes [${start}, ${end}) outside the data (${this.size} bytes)`);
    }
    this.bytesRead += end - start;
    if (!into) return this.bytes.slice(start, end);
    into.set(this.bytes.subarray(start, end));
    return into;
  }
  async close(): Promise<void> {}
}
