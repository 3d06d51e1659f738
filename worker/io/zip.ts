import { InputError } from '../../proto/errors.js';
import type { ByteSource } from './byte-source.js';
import { inLanes } from './in-lanes.js';

/**
 * Zip central directory and entry offsets, read by byte range: the tail of the file (EOCD,
 * ZIP64 locator and record), the central directory, then the local header of each entry
 * we need. A torch.save checkpoint of pythia-12b is ~24 GB, so nothing here reads entry data.
 * Only what `torch.save` writes is accepted: stored (method 0), unencrypted entries.
 * Layout: PKWARE APPNOTE.TXT §4.3.
 */

export interface ZipEntry {
  name: string;
  /** 0 = stored; anything else is compressed and cannot be range-read. */
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  /** Offset of the local file header; the data starts after its name and extra field. */
  headerOffset: number;
}

export interface ZipDirectory {
  source: ByteSource;
  entries: Map<string, ZipEntry>;
  /** Where the central directory starts: entry data must end before it. */
  directoryOffset: number;
}

const EOCD_SIG = 0x06054b50;
const EOCD_BYTES = 22;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_LOCATOR_BYTES = 20;
const ZIP64_EOCD_SIG = 0x06064b50;
const ZIP64_EOCD_BYTES = 56;
const CENTRAL_SIG = 0x02014b50;
const CENTRAL_BYTES = 46;
const LOCAL_SIG = 0x04034b50;
const LOCAL_BYTES = 30;
const ZIP64_EXTRA_ID = 0x0001;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;
/** EOCD + the longest comment; one read of this tail finds the EOCD in any zip. */
const TAIL_BYTES = EOCD_BYTES + 0xffff + ZIP64_LOCATOR_BYTES + ZIP64_EOCD_BYTES;
/**
 * torch's writer pads each local header's extra field so data is 64-byte aligned, plus a
 * 20-byte ZIP64 field past 4 GiB: 128 extra bytes cover it, so one read finds the offset.
 */
const LOCAL_EXTRA_GUESS = 128;
/** Local headers closer than this are fetched in one read (bias/norm storages are tiny). */
const HEADER_MERGE_GAP = 64 * 1024;
const HEADER_READS_IN_FLIGHT = 8;

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.length);

function u64(v: DataView, at: number, fail: (m: string) => never): number {
  const big = v.getBigUint64(at, true);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) fail(`64-bit field ${big} is beyond 2^53`);
  return Number(big);
}

function failFor(source: ByteSource): (msg: string) => never {
  return (msg) => {
    throw new InputError(`${source.name}: ${msg}`);
  };
}

/** Position of the EOCD in `tail`, scanning back over a possible comment. */
function findEocd(tail: Uint8Array): number {
  const v = view(tail);
  for (let i = tail.length - EOCD_BYTES; i >= 0; i--) {
    if (v.getUint32(i, true) === EOCD_SIG && i + EOCD_BYTES + v.getUint16(i + 20, true) === tail.length) return i;
  }
  return -1;
}

interface DirectoryLocation {
  offset: number;
  bytes: number;
  count: number;
}

async function locateDirectory(source: ByteSource, fail: (m: string) => never): Promise<{ where: DirectoryLocation; tail: Uint8Array; tailStart: number }> {
  if (source.size < EOCD_BYTES) fail('not a zip file (too short)');
  const tailStart = Math.max(0, source.size - TAIL_BYTES);
  const tail = await source.read(tailStart, source.size);
  const e = findEocd(tail);
  if (e < 0) fail('not a zip file (no end-of-central-directory record)');
  const v = view(tail);
  if (v.getUint16(e + 4, true) !== 0 || v.getUint16(e + 6, true) !== 0) fail('multi-disk zip archives are not supported');
  let where: DirectoryLocation = { count: v.getUint16(e + 10, true), bytes: v.getUint32(e + 12, true), offset: v.getUint32(e + 16, true) };
  const needs64 = where.count === U16_MAX || where.bytes === U32_MAX || where.offset === U32_MAX;
  const l = e - ZIP64_LOCATOR_BYTES;
  if (l >= 0 && v.getUint32(l, true) === ZIP64_LOCATOR_SIG) {
    const recordAt = u64(v, l + 8, fail);
    const rec = inTail(tail, tailStart, recordAt, ZIP64_EOCD_BYTES) ?? (await readChecked(source, recordAt, ZIP64_EOCD_BYTES, fail, 'ZIP64 end-of-central-directory record'));
    const r = view(rec);
    if (r.getUint32(0, true) !== ZIP64_EOCD_SIG) fail(`no ZIP64 end-of-central-directory record at ${recordAt}`);
    where = { count: u64(r, 32, fail), bytes: u64(r, 40, fail), offset: u64(r, 48, fail) };
  } else if (needs64) {
    fail('the end-of-central-directory record needs ZIP64 values but there is no ZIP64 locator');
  }
  if (where.offset + where.bytes > source.size) fail(`central directory [${where.offset}, ${where.offset + where.bytes}) lies past the end of the file (${source.size} bytes)`);
  return { where, tail, tailStart };
}

async function readChecked(source: ByteSource, at: number, n: number, fail: (m: string) => never, what: string): Promise<Uint8Array> {
  if (at < 0 || at + n > source.size) fail(`${what} at ${at} lies past the end of the file`);
  return source.read(at, at + n);
}

/** Applies a ZIP64 extra field (id 1) to the 32-bit fields that overflowed. */
function applyZip64Extra(extra: DataView, e: ZipEntry, fail: (m: string) => never): void {
  let p = 0;
  while (p + 4 <= extra.byteLength) {
    const id = extra.getUint16(p, true);
    const len = extra.getUint16(p + 2, true);
    if (p + 4 + len > extra.byteLength) fail(`entry ${e.name}: extra field overruns its header`);
    if (id === ZIP64_EXTRA_ID) {
      // Only the overflowed fields are present, in this fixed order (APPNOTE §4.5.3).
      let q = p + 4;
      const take = () => {
        if (q + 8 > p + 4 + len) fail(`entry ${e.name}: ZIP64 extra field is too short`);
        const n = u64(extra, q, fail);
        q += 8;
        return n;
      };
      if (e.size === U32_MAX) e.size = take();
      if (e.compressedSize === U32_MAX) e.compressedSize = take();
      if (e.headerOffset === U32_MAX) e.headerOffset = take();
      return;
    }
    p += 4 + len;
  }
  if (e.size === U32_MAX || e.compressedSize === U32_MAX || e.headerOffset === U32_MAX) {
    fail(`entry ${e.name}: 32-bit field overflowed but there is no ZIP64 extra field`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Bytes [at, at + n) of the file when the tail already read holds them: no second read. */
function inTail(tail: Uint8Array, tailStart: number, at: number, n: number): Uint8Array | undefined {
  return at >= tailStart && at + n <= tailStart + tail.length ? tail.subarray(at - tailStart, at - tailStart + n) : undefined;
}

export async function readZipDirectory(source: ByteSource): Promise<ZipDirectory> {
  const fail = failFor(source);
  const { where, tail, tailStart } = await locateDirectory(source, fail);
  const dir = inTail(tail, tailStart, where.offset, where.bytes) ?? (await source.read(where.offset, where.offset + where.bytes));
  const v = view(dir);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < where.count; i++) {
    if (p + CENTRAL_BYTES > dir.length || v.getUint32(p, true) !== CENTRAL_SIG) fail(`central directory entry ${i} is malformed`);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    const end = p + CENTRAL_BYTES + nameLen + extraLen + commentLen;
    if (end > dir.length) fail(`central directory entry ${i} overruns the directory`);
    const e: ZipEntry = {
      name: utf8.decode(dir.subarray(p + CENTRAL_BYTES, p + CENTRAL_BYTES + nameLen)),
      flags: v.getUint16(p + 8, true),
      method: v.getUint16(p + 10, true),
      compressedSize: v.getUint32(p + 20, true),
      size: v.getUint32(p + 24, true),
      headerOffset: v.getUint32(p + 42, true),
    };
    const extraAt = p + CENTRAL_BYTES + nameLen;
    applyZip64Extra(new DataView(dir.buffer, dir.byteOffset + extraAt, extraLen), e, fail);
    if (e.headerOffset + LOCAL_BYTES > where.offset) fail(`entry ${e.name}: local header offset ${e.headerOffset} is inside or past the central directory`);
    if (entries.has(e.name)) fail(`entry ${e.name} appears twice`);
    entries.set(e.name, e);
    p = end;
  }
  return { source, entries, directoryOffset: where.offset };
}

/** Refuses what cannot be read by byte range: compressed or encrypted entries. */
export function requireStored(zip: ZipDirectory, e: ZipEntry): void {
  if (e.flags & 1) throw new InputError(`${zip.source.name}: zip entry ${e.name} is encrypted`);
  if (e.method !== 0) {
    throw new InputError(`${zip.source.name}: zip entry ${e.name} is compressed (method ${e.method}); only stored entries, as torch.save writes them, can be read by byte range`);
  }
  if (e.compressedSize !== e.size) throw new InputError(`${zip.source.name}: zip entry ${e.name} is stored but its sizes differ (${e.compressedSize} vs ${e.size})`);
}

/**
 * Absolute data offset of each entry, from its local header (whose extra field differs from
 * the central one: torch pads it for alignment). Nearby headers are fetched in one read.
 */
export async function entryDataOffsets(zip: ZipDirectory, wanted: ZipEntry[]): Promise<Map<string, number>> {
  const { source } = zip;
  const fail = failFor(source);
  const sorted = [...wanted].sort((a, b) => a.headerOffset - b.headerOffset);
  const guess = (e: ZipEntry) => Math.min(zip.directoryOffset, e.headerOffset + LOCAL_BYTES + nameBytes(e) + LOCAL_EXTRA_GUESS);
  // Runs of entries [i, j) whose headers one read of [headerOffset of i, end) covers.
  const runs: Array<{ i: number; j: number; end: number }> = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i + 1;
    let end = guess(sorted[i]);
    while (j < sorted.length && sorted[j].headerOffset - end <= HEADER_MERGE_GAP) end = Math.max(end, guess(sorted[j++]));
    runs.push({ i, j, end });
    i = j;
  }
  const out = new Map<string, number>();
  // Several reads in flight: storages lie megabytes apart, and over HTTP each is a round trip.
  await inLanes(runs.length, HEADER_READS_IN_FLIGHT, async (r) => {
    const { i, j, end } = runs[r];
    const base = sorted[i].headerOffset;
    const block = await source.read(base, end);
    for (let k = i; k < j; k++) out.set(sorted[k].name, await dataOffset(zip, sorted[k], block, base, fail));
  });
  return out;
}

const nameBytes = (e: ZipEntry) => new TextEncoder().encode(e.name).length;

async function dataOffset(zip: ZipDirectory, e: ZipEntry, block: Uint8Array, base: number, fail: (m: string) => never): Promise<number> {
  let at = e.headerOffset - base;
  let bytes = block;
  if (at + LOCAL_BYTES > bytes.length) {
    bytes = await readChecked(zip.source, e.headerOffset, LOCAL_BYTES, fail, `local header of ${e.name}`);
    at = 0;
  }
  const v = view(bytes);
  if (v.getUint32(at, true) !== LOCAL_SIG) fail(`entry ${e.name}: no local file header at ${e.headerOffset}`);
  if (v.getUint16(at + 8, true) !== e.method) fail(`entry ${e.name}: local header and central directory disagree on the method`);
  const start = e.headerOffset + LOCAL_BYTES + v.getUint16(at + 26, true) + v.getUint16(at + 28, true);
  if (start + e.compressedSize > zip.directoryOffset) {
    fail(`entry ${e.name}: data [${start}, ${start + e.compressedSize}) runs into the central directory at ${zip.directoryOffset}`);
  }
  return start;
}
