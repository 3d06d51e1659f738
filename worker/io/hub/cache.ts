import { constants, writeSync } from 'node:fs';
import { appendFile, mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { readFileRanges } from '../file-ranges.js';
import type { WantedRange } from '../ranged-read.js';

/**
 * Our on-disk cache of what was read from the hub, so rerunning an analysis (or extending
 * a series) makes almost no requests.
 *  - Small files (tree listing, config.json, index JSON) are keyed by commit, never by
 *    branch name: pythia's step branches have been re-pointed (EleutherAI/pythia #195).
 *  - Byte ranges are keyed by the file's sha256, so two revisions holding the same file
 *    (step0 and step1 of GPT-NeoX) share them. Each blob is a sparse file plus an
 *    append-only log of the ranges written: the range is logged only after its bytes are.
 * A cache that cannot be written (read-only home, full disk) is skipped, never an error.
 */

export const isSha256 = (s: string) => /^[0-9a-f]{64}$/.test(s);
/** A full git commit id: the only revision name cached entries may be keyed by. */
export const isCommit = (s: string) => /^[0-9a-f]{40}$/.test(s);
/** Blob keys: an LFS sha256, or `git-<blob id>` for a file stored in git itself. */
const isBlobKey = (s: string) => isSha256(s) || /^git-[0-9a-f]{40}$/.test(s);

export class HubCache {
  constructor(readonly root: string) {}

  private commitDir(repo: string, commit: string): string {
    return join(this.root, 'hub', repo.replace('/', '--'), commit);
  }

  /** A small file of `commit`, or undefined when not cached (or unreadable). */
  async getText(repo: string, commit: string, name: string): Promise<string | undefined> {
    if (!isCommit(commit)) return undefined;
    try {
      return await readFile(join(this.commitDir(repo, commit), encodeURIComponent(name)), 'utf8');
    } catch {
      return undefined;
    }
  }

  async putText(repo: string, commit: string, name: string, text: string): Promise<void> {
    if (!isCommit(commit)) return;
    try {
      const dir = this.commitDir(repo, commit);
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(join(dir, encodeURIComponent(name)), text);
    } catch {
      // Best effort: see the class comment.
    }
  }

  /** The range cache of one file; undefined for a key that cannot name a blob. */
  blob(key: string): BlobCache | undefined {
    return isBlobKey(key) ? new BlobCache(join(this.root, 'blobs', key)) : undefined;
  }
}

export class BlobCache {
  /** Disjoint, sorted, merged [start, end) ranges present in `data`. */
  private ranges?: Array<[number, number]>;
  private handle?: Promise<FileHandle | undefined>;
  private disabled = false;

  constructor(private readonly dir: string) {}

  private async loadRanges(): Promise<Array<[number, number]>> {
    if (this.ranges) return this.ranges;
    let log = '';
    try {
      log = await readFile(join(this.dir, 'ranges'), 'utf8');
    } catch {
      // No cache yet.
    }
    const list: Array<[number, number]> = [];
    for (const line of log.split('\n')) {
      const m = /^(\d+) (\d+)$/.exec(line);
      if (m) list.push([Number(m[1]), Number(m[2])]);
    }
    this.ranges = merge(list);
    return this.ranges;
  }

  async covers(start: number, end: number): Promise<boolean> {
    return (await this.coverage())(start, end);
  }

  /** Whether a range is present, answered without I/O once the log is loaded (planned reads ask thousands of times). */
  async coverage(): Promise<(start: number, end: number) => boolean> {
    const ranges = await this.loadRanges();
    return (start, end) => {
      const i = lastStartingAtOrBefore(ranges, start);
      return i >= 0 && end <= ranges[i][1];
    };
  }

  private file(): Promise<FileHandle | undefined> {
    this.handle ??= (async () => {
      try {
        await mkdir(this.dir, { recursive: true });
        return await open(join(this.dir, 'data'), constants.O_RDWR | constants.O_CREAT);
      } catch {
        this.disabled = true;
        return undefined;
      }
    })();
    return this.handle;
  }

  /** Bytes [start, end), which covers() said are present; undefined if the file failed us. */
  async read(start: number, end: number): Promise<Uint8Array | undefined> {
    const h = await this.file();
    if (!h) return undefined;
    const out = new Uint8Array(end - start);
    let done = 0;
    while (done < out.length) {
      const { bytesRead } = await h.read(out, done, out.length - done, start + done);
      if (bytesRead === 0) return undefined;
      done += bytesRead;
    }
    return out;
  }

  async write(start: number, bytes: Uint8Array): Promise<void> {
    await this.writeChunk(start, bytes);
    await this.note([[start, start + bytes.length]]);
  }

  /** Writes bytes at `start` without claiming them: note() does, once a request is complete. */
  async writeChunk(start: number, bytes: Uint8Array): Promise<void> {
    if (this.disabled || bytes.length === 0) return;
    try {
      const h = await this.file();
      if (!h) return;
      // Synchronous: into the page cache a write costs ~5 µs, an asynchronous one ~50–80 µs of
      // the main thread, and a cold sampled read writes thousands of small chunks (bench/RESULTS.md).
      let done = 0;
      while (done < bytes.length) done += writeSync(h.fd, bytes, done, bytes.length - done, start + done);
    } catch {
      this.disabled = true;
    }
  }

  /** Claims written ranges in one append to the log (a planned read writes thousands). */
  async note(ranges: ReadonlyArray<readonly [number, number]>): Promise<void> {
    const list = ranges.filter(([s, e]) => e > s);
    if (this.disabled || list.length === 0) return;
    try {
      await appendFile(join(this.dir, 'ranges'), list.map(([s, e]) => `${s} ${e}\n`).join(''));
      await this.loadRanges();
      // Updated in one synchronous step, so concurrent writes never lose each other.
      for (const [s, e] of list) insertRange(this.ranges!, s, e);
    } catch {
      this.disabled = true;
    }
  }

  /** Fills wanted ranges that covers() said are present, in planned blocks; false if the file failed us. */
  async readRanges(name: string, wanted: readonly WantedRange[]): Promise<boolean> {
    const h = await this.file();
    if (!h) return false;
    try {
      await readFileRanges(h, name, wanted);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    const h = await this.handle;
    this.handle = undefined;
    await h?.close().catch(() => {});
  }
}

/**
 * Index of the last range starting at or before `at`, or -1. A sampled read of a big
 * checkpoint logs tens of thousands of ranges: lookups and inserts must not scan them all.
 */
function lastStartingAtOrBefore(ranges: ReadonlyArray<[number, number]>, at: number): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid][0] <= at) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Adds [start, end) to sorted, disjoint, merged `ranges` in place, merging its neighbours. */
function insertRange(ranges: Array<[number, number]>, start: number, end: number): void {
  let i = lastStartingAtOrBefore(ranges, start);
  if (i < 0 || ranges[i][1] < start) i++;
  let j = i;
  while (j < ranges.length && ranges[j][0] <= end) j++;
  const merged: [number, number] = j > i ? [Math.min(start, ranges[i][0]), Math.max(end, ranges[j - 1][1])] : [start, end];
  ranges.splice(i, j - i, merged);
}

function merge(list: Array<[number, number]>): Array<[number, number]> {
  const sorted = list.filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}
