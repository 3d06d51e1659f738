import { crc32, deflateRawSync } from 'node:zlib';

/** Crafted torch.save archives for tests and fuzz targets: a zip writer and a pickle assembler. */

export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** 8 = deflate. */
  method?: 0 | 8;
}

export interface ZipOptions {
  zip64?: boolean;
  comment?: string;
  /** As torch.save writes them: flag bit 3, zero CRC and sizes locally, a signed 16-byte data descriptor after the data. */
  descriptor?: boolean;
}

/** A zip as torch.save lays it out (64-byte aligned data), optionally with ZIP64 records. */
export function buildZip(entries: ZipInput[], opts: ZipOptions = {}): Uint8Array {
  const flags = opts.descriptor ? 0x0808 : 0;
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let at = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const body = e.method === 8 ? deflateRawSync(e.data) : Buffer.from(e.data);
    const pad = (64 - ((at + 30 + name.length + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad);
    extra.writeUInt16LE(0x4246, 0); // "FB", torch's padding field
    extra.writeUInt16LE(pad, 2);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(e.method ?? 0, 8);
    local.writeUInt32LE(opts.descriptor ? 0 : crc32(e.data), 14);
    local.writeUInt32LE(opts.descriptor ? 0 : body.length, 18);
    local.writeUInt32LE(opts.descriptor ? 0 : e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const descriptor = Buffer.alloc(opts.descriptor ? 16 : 0);
    if (opts.descriptor) {
      descriptor.writeUInt32LE(0x08074b50, 0);
      descriptor.writeUInt32LE(crc32(e.data), 4);
      descriptor.writeUInt32LE(body.length, 8);
      descriptor.writeUInt32LE(e.data.length, 12);
    }
    const offset = at;
    parts.push(local, name, extra, body, descriptor);
    at += 30 + name.length + extra.length + body.length + descriptor.length;

    const z64 = Buffer.alloc(opts.zip64 ? 28 : 0);
    if (opts.zip64) {
      z64.writeUInt16LE(1, 0);
      z64.writeUInt16LE(24, 2);
      z64.writeBigUInt64LE(BigInt(e.data.length), 4);
      z64.writeBigUInt64LE(BigInt(body.length), 12);
      z64.writeBigUInt64LE(BigInt(offset), 20);
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(flags, 8);
    c.writeUInt16LE(e.method ?? 0, 10);
    c.writeUInt32LE(crc32(e.data), 16);
    c.writeUInt32LE(opts.zip64 ? 0xffffffff : body.length, 20);
    c.writeUInt32LE(opts.zip64 ? 0xffffffff : e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(z64.length, 30);
    c.writeUInt32LE(opts.zip64 ? 0xffffffff : offset, 42);
    central.push(c, name, z64);
  }
  const cd = Buffer.concat(central);
  const cdOffset = at;
  const tail: Buffer[] = [cd];
  if (opts.zip64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeBigUInt64LE(BigInt(entries.length), 24);
    rec.writeBigUInt64LE(BigInt(entries.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40);
    rec.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(cdOffset + cd.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(rec, loc);
  }
  const comment = Buffer.from(opts.comment ?? '');
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(opts.zip64 ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(opts.zip64 ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(opts.zip64 ? 0xffffffff : cd.length, 12);
  eocd.writeUInt32LE(opts.zip64 ? 0xffffffff : cdOffset, 16);
  eocd.writeUInt16LE(comment.length, 20);
  return new Uint8Array(Buffer.concat([...parts, ...tail, eocd, comment]));
}

/** Pickle protocol 2 opcodes, as torch.save emits them. */
export const P = {
  proto: () => [0x80, 2],
  mark: () => [0x28],
  str: (s: string) => {
    const b = Buffer.from(s);
    const n = Buffer.alloc(4);
    n.writeUInt32LE(b.length);
    return [0x58, ...n, ...b];
  },
  int: (v: number) => {
    if (v >= 0 && v < 256) return [0x4b, v];
    if (v >= 0 && v < 65536) return [0x4d, v & 0xff, v >> 8];
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return [0x4a, ...b];
  },
  global: (module: string, name: string) => [0x63, ...Buffer.from(`${module}\n${name}\n`)],
  stackGlobal: (module: string, name: string) => [...P.str(module), ...P.str(name), 0x93],
  tuple: (...items: number[][]) => [...P.mark(), ...items.flat(), 0x74],
  emptyTuple: () => [0x29],
  emptyDict: () => [0x7d],
  setitems: () => [0x75],
  reduce: () => [0x52],
  persid: () => [0x51],
  newfalse: () => [0x89],
  stop: () => [0x2e],
};

export interface CraftedTensor {
  name: string;
  key: string;
  storage: string;
  numel: number;
  offset: number;
  shape: number[];
  strides: number[];
}

/** {name: _rebuild_tensor_v2(storage, offset, shape, strides, False, OrderedDict())}, torch's layout. */
export function statePickle(tensors: CraftedTensor[]): Uint8Array {
  const items = tensors.flatMap((t) => [
    ...P.str(t.name),
    ...P.global('torch._utils', '_rebuild_tensor_v2'),
    ...P.tuple(
      [...P.tuple(P.str('storage'), P.global('torch', t.storage), P.str(t.key), P.str('cpu'), P.int(t.numel)), ...P.persid()],
      P.int(t.offset),
      P.tuple(...t.shape.map(P.int)),
      P.tuple(...t.strides.map(P.int)),
      P.newfalse(),
      [...P.global('collections', 'OrderedDict'), ...P.emptyTuple(), ...P.reduce()],
    ),
    ...P.reduce(),
  ]);
  return Uint8Array.from([...P.proto(), ...P.emptyDict(), ...P.mark(), ...items, ...P.setitems(), ...P.stop()]);
}

export const f32Bytes = (v: ArrayLike<number>) => new Uint8Array(Float32Array.from(v).buffer);

/** An archive `archive/` with data.pkl and the given storages (key → float32 values). */
export function torchZip(pickle: Uint8Array, storages: Record<string, Uint8Array>, opts: ZipOptions & { compress?: string[] } = {}): Uint8Array {
  const entries: ZipInput[] = [
    { name: 'archive/data.pkl', data: pickle },
    { name: 'archive/byteorder', data: Buffer.from('little') },
    ...Object.entries(storages).map(([k, data]) => ({ name: `archive/data/${k}`, data })),
    { name: 'archive/version', data: Buffer.from('3\n') },
  ];
  for (const e of entries) if (opts.compress?.includes(e.name)) e.method = 8;
  return buildZip(entries, opts);
}

/** Offsets of one entry of a zip: its local header and where its data starts. */
export function localHeaderOf(zip: Uint8Array, name: string): { header: number; data: number } {
  const v = new DataView(zip.buffer, zip.byteOffset, zip.length);
  for (let p = 0; p + 30 <= zip.length; p++) {
    if (v.getUint32(p, true) !== 0x04034b50) continue;
    const nameLen = v.getUint16(p + 26, true);
    if (Buffer.from(zip.subarray(p + 30, p + 30 + nameLen)).toString() === name) return { header: p, data: p + 30 + nameLen + v.getUint16(p + 28, true) };
  }
  throw new Error(`no local header for ${name}`);
}
