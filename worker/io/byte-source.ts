import { open, type FileHandle } from 'node:fs/promises';
import { InputError } from '../../proto/errors.js';

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
  close(): Promise<void>;
}

export class FileByteSource implements ByteSource {
  bytesRead = 0;
  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<FileByteSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String((err as Error).message);
      throw new InputError(`${path}: ${why}`, { cause: err });
    }
    const stat = await handle.stat();
    if (!stat.isFile()) {
      await handle.close();
      throw new InputError(`${path}: not a regular file`);
    }
    return new FileByteSource(path, stat.size, handle);
  }

  async read(start: number, end: number, into?: Uint8Array): Promise<Uint8Array> {
    if (start < 0 || end > this.size || start > end) {
      throw new InputError(`${this.name}: read of bytes [${start}, ${end}) outside the file (${this.size} bytes)`);
    }
    const out = into ?? new Uint8Array(end - start);
    let done = 0;
    while (done < out.length) {
      const { bytesRead } = await this.handle.read(out, done, out.length - done, start + done);
      if (bytesRead === 0) throw new InputError(`${this.name}: file shrank while reading (truncated at ${start + done})`);
      done += bytesRead;
    }
    this.bytesRead += out.length;
    return out;
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
