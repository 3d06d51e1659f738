import { InputError } from '../../proto/errors.js';
import { shown } from '../../proto/limits.js';
import type { ByteSource } from './byte-source.js';
import { inLanes } from './in-lanes.js';

/**
 * Zip central directory and entry offsets, read by byte range: the tail of the file (EOCD,
 * ZIP64 locator and record), the central directory, then the local header of each entry
 * we need. A torch.save checkpoint of pythia-12b is ~24 GB, so nothing here reads entry data.
 * Only what `torch.save` writes is accepted: stored (method 0), unencrypted entries.
 * Layout: PKWARE APPNOTE.TXT §4.3.
 *
 * Each entry's local header must agree with the central directory (name, flags, method, CRC
 * and sizes, or its data descriptor when flag bit 3 defers them), and its data must end
 * before the next entry starts: a local extra field 64 bytes too long otherwise moved every
 * weight of that tensor by 64 bytes, and the analysis ran on the wrong bytes without a word.
 */

export interface ZipEntry {
  name: string;
  /** 0 = stored; anything else is compressed and cannot be range-read. */
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  /** CRC-32 of the uncompressed data, as the central directory records it. */
  crc: number;
  /** Offset of the local file header; the data starts after its name and extra field. */
  headerOffset: number;
  /** Where the next entry (or the central directory) starts: data and descriptor end by here. */
  limit: number;
  /** The name as stored, compared byte for byte with the local header's. */
  nameBytes: Uint8Array;
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
const DESCRIPTOR_SIG = 0x08074b50;
/** A data descriptor: [signature] crc, sizes as 4 or (ZIP64) 8 bytes each — 12, 16, 20 or 24 bytes. */
const DESCRIPTOR_MAX_BYTES = 24;
/** Flag bits that change how an entry is read: encryption (0, 6), deferred sizes (3), UTF-8 names (11). */
const FLAGS_COMPARED = 0x0849;
const FLAG_DESCRIPTOR = 0x0008;
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
    if (p + 4 + len > extra.byteLength) fail(`entry ${shown(e.name)}: extra field overruns its header`);
    if (id === ZIP64_EXTRA_ID) {
      // Only the overflowed fields are present, in this fixed order (APPNOTE §4.5.3).
      let q = p + 4;
      const take = () => {
        if (q + 8 > p + 4 + len) fail(`entry ${shown(e.name)}: ZIP64 extra field is too short`);
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
    fail(`entry ${shown(e.name)}: 32-bit field overflowed but there is no ZIP64 extra field`);
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
    const nameBytes = dir.slice(p + CENTRAL_BYTES, p + CENTRAL_BYTES + nameLen);
    const e: ZipEntry = {
      name: utf8.decode(nameBytes),
      flags: v.getUint16(p + 8, true),
      method: v.getUint16(p + 10, true),
      crc: v.getUint32(p + 16, true),
      compressedSize: v.getUint32(p + 20, true),
      size: v.getUint32(p + 24, true),
      headerOffset: v.getUint32(p + 42, true),
      limit: where.offset,
      nameBytes,
    };
    const extraAt = p + CENTRAL_BYTES + nameLen;
    applyZip64Extra(new DataView(dir.buffer, dir.byteOffset + extraAt, extraLen), e, fail);
    if (e.headerOffset + LOCAL_BYTES > where.offset) fail(`entry ${shown(e.name)}: local header offset ${e.headerOffset} is inside or past the central directory`);
    if (entries.has(e.name)) fail(`entry ${shown(e.name)} appears twice`);
    entries.set(e.name, e);
    p = end;
  }
  // Each entry ends where the next one (by offset) begins.
  const byOffset = [...entries.values()].sort((a, b) => a.headerOffset - b.headerOffset);
  for (let k = 0; k + 1 < byOffset.length; k++) {
    const [a, b] = [byOffset[k], byOffset[k + 1]];
    if (b.headerOffset - a.headerOffset < LOCAL_BYTES + a.nameBytes.length) fail(`entries ${shown(a.name)} and ${shown(b.name)}: local headers at ${a.headerOffset} and ${b.headerOffset} overlap`);
    a.limit = b.headerOffset;
  }
  return { source, entries, directoryOffset: where.offset };
}

/** Refuses what cannot be read by byte range: compressed or encrypted entries. */
export function requireStored(zip: ZipDirectory, e: ZipEntry): void {
  if (e.flags & 1) throw new InputError(`${zip.source.name}: zip entry ${shown(e.name)} is encrypted`);
  if (e.method !== 0) {
    throw new InputError(`${zip.source.name}: zip entry ${shown(e.name)} is compressed (method ${e.method}); only stored entries, as torch.save writes them, can be read by byte range`);
  }
  if (e.compressedSize !== e.size) throw new InputError(`${zip.source.name}: zip entry ${shown(e.name)} is stored but its sizes differ (${e.compressedSize} vs ${e.size})`);
}

/** Bytes of the file read in a few merged ranges; `at` serves any sub-range, reading what it lacks. */
class RangeReads {
  private readonly blocks: Array<{ start: number; bytes: Uint8Array }> = [];
  constructor(private readonly source: ByteSource) {}

  /** Reads `ranges` (merged when closer than HEADER_MERGE_GAP), several in flight. */
  async load(ranges: Array<[number, number]>): Promise<void> {
    const sorted = ranges.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
    const runs: Array<[number, number]> = [];
    for (const [a, b] of sorted) {
      const last = runs[runs.length - 1];
      if (last && a - last[1] <= HEADER_MERGE_GAP) last[1] = Math.max(last[1], b);
      else runs.push([a, b]);
    }
    // Several reads in flight: storages lie megabytes apart, and over HTTP each is a round trip.
    await inLanes(runs.length, HEADER_READS_IN_FLIGHT, async (k) => {
      this.blocks.push({ start: runs[k][0], bytes: await this.source.read(runs[k][0], runs[k][1]) });
    });
  }

  async at(start: number, n: number): Promise<DataView> {
    const b = this.blocks.find((x) => x.start <= start && start + n <= x.start + x.bytes.length);
    if (b) return new DataView(b.bytes.buffer, b.bytes.byteOffset + start - b.start, n);
    return view(await this.source.read(start, start + n));
  }
}

/**
 * Absolute data offset of each entry, from its local header (whose extra field differs from
 * the central one: torch pads it for alignment), after checking the header and the entry's
 * end against the central directory. Nearby headers and descriptors are fetched in one read.
 */
export async function entryDataOffsets(zip: ZipDirectory, wanted: ZipEntry[]): Promise<Map<string, number>> {
  const fail = failFor(zip.source);
  const reads = new RangeReads(zip.source);
  const ranges: Array<[number, number]> = [];
  for (const e of wanted) {
    ranges.push([e.headerOffset, Math.min(e.limit, e.headerOffset + LOCAL_BYTES + e.nameBytes.length + LOCAL_EXTRA_GUESS)]);
    // The descriptor and the 4 bytes before it (see checkDescriptor).
    if (e.flags & FLAG_DESCRIPTOR) ranges.push([Math.max(e.headerOffset, e.limit - DESCRIPTOR_MAX_BYTES - 4), e.limit]);
  }
  await reads.load(ranges);
  const out = new Map<string, number>();
  for (const e of wanted) out.set(e.name, await dataOffset(reads, e, fail));
  return out;
}

/** Reads the ZIP64 sizes (uncompressed, then compressed) of a local header's extra field. */
function localZip64Sizes(extra: DataView, e: ZipEntry, fail: (m: string) => never): [number, number] {
  for (let p = 0; p + 4 <= extra.byteLength; ) {
    const len = extra.getUint16(p + 2, true);
    if (extra.getUint16(p, true) === ZIP64_EXTRA_ID) {
      if (len < 16 || p + 4 + 16 > extra.byteLength) break;
      return [u64(extra, p + 4, fail), u64(extra, p + 12, fail)];
    }
    p += 4 + len;
  }
  return fail(`entry ${shown(e.name)}: local header sizes overflow 32 bits but it has no ZIP64 extra field`);
}

async function dataOffset(reads: RangeReads, e: ZipEntry, fail: (m: string) => never): Promise<number> {
  const disagree = (what: string): never => fail(`entry ${shown(e.name)}: local header and central directory disagree on the ${what}`);
  if (e.headerOffset + LOCAL_BYTES > e.limit) fail(`entry ${shown(e.name)}: no local file header at ${e.headerOffset}`);
  const v = await reads.at(e.headerOffset, LOCAL_BYTES);
  if (v.getUint32(0, true) !== LOCAL_SIG) fail(`entry ${shown(e.name)}: no local file header at ${e.headerOffset}`);
  const flags = v.getUint16(6, true);
  if ((flags & FLAGS_COMPARED) !== (e.flags & FLAGS_COMPARED)) disagree('flags');
  if (v.getUint16(8, true) !== e.method) disagree('method');
  const nameLen = v.getUint16(26, true);
  const extraLen = v.getUint16(28, true);
  const start = e.headerOffset + LOCAL_BYTES + nameLen + extraLen;
  const end = start + e.compressedSize;
  const variable = await reads.at(e.headerOffset + LOCAL_BYTES, nameLen + extraLen);
  const name = new Uint8Array(variable.buffer, variable.byteOffset, nameLen);
  if (nameLen !== e.nameBytes.length || name.some((b, i) => b !== e.nameBytes[i])) disagree('name');
  if (end > e.limit) fail(`entry ${shown(e.name)}: data [${start}, ${end}) runs past the next entry, which starts at ${e.limit}`);
  let [crc, compressed, size] = [v.getUint32(14, true), v.getUint32(18, true), v.getUint32(22, true)];
  if (compressed === U32_MAX || size === U32_MAX) [size, compressed] = localZip64Sizes(new DataView(variable.buffer, variable.byteOffset + nameLen, extraLen), e, fail);
  if (flags & FLAG_DESCRIPTOR) {
    // Sizes and CRC follow the data; the local fields are zero (or the true values).
    if (crc !== 0 && crc !== e.crc) disagree('CRC-32');
    if ((compressed !== 0 && compressed !== e.compressedSize) || (size !== 0 && size !== e.size)) disagree('sizes');
    await checkDescriptor(reads, e, end, fail);
  } else {
    if (crc !== e.crc) disagree('CRC-32');
    if (compressed !== e.compressedSize || size !== e.size) disagree('sizes');
  }
  return start;
}

/** The data descriptor must fill [end, limit) exactly and repeat the central CRC and sizes. */
async function checkDescriptor(reads: RangeReads, e: ZipEntry, end: number, fail: (m: string) => never): Promise<void> {
  const gap = e.limit - end;
  if (gap !== 12 && gap !== 16 && gap !== 20 && gap !== 24) {
    fail(`entry ${shown(e.name)}: data ends at ${end}, ${gap} bytes before the next entry at ${e.limit}, where a data descriptor of 12 to 24 bytes belongs`);
  }
  const d = await reads.at(end - 4, gap + 4);
  const signed = gap === 16 || gap === 24;
  if (signed && d.getUint32(4, true) !== DESCRIPTOR_SIG) fail(`entry ${shown(e.name)}: no data descriptor at ${end}, where its data should end`);
  // A signed descriptor read 4 bytes late looks like an unsigned one (CRC, sizes): data
  // ending in the signature means the data was taken to start 4 bytes late.
  if (!signed && d.getUint32(0, true) === DESCRIPTOR_SIG) fail(`entry ${shown(e.name)}: a data descriptor signature ends its data at ${end}: the data starts 4 bytes earlier than its local header says`);
  const at = signed ? 8 : 4;
  const wide = gap >= 20;
  const compressed = wide ? u64(d, at + 4, fail) : d.getUint32(at + 4, true);
  const size = wide ? u64(d, at + 12, fail) : d.getUint32(at + 8, true);
  if (d.getUint32(at, true) !== e.crc || compressed !== e.compressedSize || size !== e.size) {
    fail(`entry ${shown(e.name)}: the data descriptor at ${end} disagrees with the central directory (CRC-32 or sizes)`);
  }
}
