import { InputError } from '../../proto/errors.js';
import { FileByteSource } from './byte-source.js';
import { checkNodeIds, DEFAULT_CHUNK_BYTES, edgesFromColumns, edgesFromRows, firstBadNodeId, nodeIdError, type EdgeBlock, type EdgeList, type EdgeStream, type ScanOptions } from './edge-list.js';
import { NPY_MAGIC, npyPreambleLength, parseNpyHeader } from './npy-header.js';

/** Group offsets are Uint32 (edge-groups.ts): an edge list holds at most this many edges. */
const MAX_EDGES = 0xffffffff;

interface OpenNpy {
  source: FileByteSource;
  edges: number;
  dataStart: number;
  fortranOrder: boolean;
}

/** Opens a float64 (E, 3) `.npy` edge list (SPEC §1) and checks its header and size. */
async function openNpyEdges(path: string): Promise<OpenNpy> {
  const source = await FileByteSource.open(path);
  try {
    let head = await source.read(0, Math.min(source.size, 4096));
    const dataStart = npyPreambleLength(path, head, source.size);
    if (dataStart > head.length) head = await source.read(0, dataStart);
    const { descr, shape, fortranOrder } = parseNpyHeader(path, head.subarray(0, dataStart));
    if (descr !== '<f8' || shape.length !== 2 || shape[1] !== 3) {
      throw new InputError(`${path}: expected a float64 array of shape (E, 3) (rows src, dst, w); got dtype ${descr} shape (${shape.join(', ')})`);
    }
    const edges = shape[0];
    if (edges > MAX_EDGES) throw new InputError(`${path}: shape (${edges}, 3) has more edges than the ${MAX_EDGES} an edge list may hold`);
    const need = edges * 3 * 8;
    if (source.size - dataStart < need) {
      throw new InputError(`${path}: truncated: shape (${edges}, 3) needs ${need} data bytes, file has ${source.size - dataStart}`);
    }
    return { source, edges, dataStart, fortranOrder };
  } catch (err) {
    await source.close();
    throw err;
  }
}

/** Reads a whole `.npy` edge list into shared memory (tests and small inputs; the CLI streams it). */
export async function readNpyEdges(path: string): Promise<EdgeList> {
  const { source, edges: E, dataStart, fortranOrder } = await openNpyEdges(path);
  try {
    // Shared memory: thread shards then read the weights in place, never copied.
    const all = new Float64Array(new SharedArrayBuffer(E * 24));
    await source.read(dataStart, dataStart + E * 24, new Uint8Array(all.buffer));
    const out = fortranOrder ? edgesFromColumns(all.subarray(0, E), all.subarray(E, 2 * E), all.subarray(2 * E)) : edgesFromRows(all);
    checkNodeIds(path, out);
    return out;
  } finally {
    await source.close();
  }
}

/**
 * Streams a `.npy` edge list in blocks of `chunkBytes` through two reused buffers: the next
 * block is read while the current one is handed on. C order reads whole rows; Fortran order
 * (three columns one after another) reads the same edge range of each column per block.
 */
export async function openNpyEdgeStream(path: string, chunkBytes = DEFAULT_CHUNK_BYTES): Promise<EdgeStream> {
  const npy = await openNpyEdges(path);
  return new NpyEdgeStream(path, npy, Math.max(1, Math.min(npy.edges, Math.floor(chunkBytes / 24))));
}

class NpyEdgeStream implements EdgeStream {
  private buffers: Float64Array[] = [];
  constructor(
    readonly path: string,
    private readonly npy: OpenNpy,
    private readonly perBlock: number,
  ) {}

  get declaredCount(): number {
    return this.npy.edges;
  }

  get maxEdges(): number {
    return this.npy.edges;
  }

  async scan(onBlock: (block: EdgeBlock) => void, { checkIds = true }: ScanOptions = {}): Promise<number> {
    const { edges: E } = this.npy;
    const k = this.perBlock;
    if (this.buffers.length === 0) this.buffers = [new Float64Array(3 * k), new Float64Array(3 * k)];
    let pending = E > 0 ? this.fill(0, this.buffers[0]) : undefined;
    try {
      for (let first = 0, turn = 0; first < E; first += k, turn ^= 1) {
        const block = await pending!;
        pending = first + k < E ? this.fill(first + k, this.buffers[turn ^ 1]) : undefined;
        const bad = checkIds ? firstBadNodeId(block) : -1;
        if (bad >= 0) throw nodeIdError(this.path, first + bad, block.src[bad * block.stride], block.dst[bad * block.stride]);
        onBlock(block);
      }
    } finally {
      // A read still in flight must end before the handle may close.
      await pending?.catch(() => {});
    }
    return E;
  }

  private async fill(first: number, buf: Float64Array): Promise<EdgeBlock> {
    const { source, edges: E, dataStart, fortranOrder } = this.npy;
    const n = Math.min(this.perBlock, E - first);
    const bytes = (f: Float64Array) => new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
    if (!fortranOrder) {
      const rows = buf.subarray(0, 3 * n);
      await source.read(dataStart + first * 24, dataStart + (first + n) * 24, bytes(rows));
      return { first, count: n, stride: 3, src: rows, dst: rows.subarray(1), w: rows.subarray(2) };
    }
    const k = this.perBlock;
    const cols = [0, 1, 2].map((c) => buf.subarray(c * k, c * k + n));
    await Promise.all(cols.map((col, c) => source.read(dataStart + (c * E + first) * 8, dataStart + (c * E + first + n) * 8, bytes(col))));
    return { first, count: n, stride: 1, src: cols[0], dst: cols[1], w: cols[2] };
  }

  async close(): Promise<void> {
    await this.npy.source.close();
  }
}

/** The exact bytes NumPy's `np.save` writes for a float64 (E, 3) array (format 1.0). */
export function npyEdgeBytes(rows: Float64Array): Uint8Array {
  const E = rows.length / 3;
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': (${E}, 3), }`;
  // NumPy pads with spaces so the data starts on a 64-byte boundary, then a newline.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total + rows.byteLength);
  out.set(NPY_MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength), total);
  return out;
}

export async function writeNpyEdges(path: string, rows: Float64Array): Promise<void> {
  // Loaded here, not with the readers: atomic-write brings node:crypto (~4 ms), which no read needs.
  const { writeFileAtomic } = await import('./atomic-write.js');
  await writeFileAtomic(path, npyEdgeBytes(rows));
}
