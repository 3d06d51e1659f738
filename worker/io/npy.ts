import { InputError } from '../../proto/errors.js';
import { FileByteSource } from './byte-source.js';
import { writeFileAtomic } from './atomic-write.js';
import { checkNodeIds, edgesFromColumns, edgesFromRows, type EdgeList } from './edge-list.js';


const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

function parseHeader(path: string, text: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr':\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(text)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shape === undefined) {
    throw new InputError(`${path}: not a valid .npy file (unreadable header)`);
  }
  const dims = shape
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  return { descr, fortran: fortran === 'True', shape: dims };
}

/** Reads a float64 (E, 3) `.npy` edge list (SPEC §1), C or Fortran order. */
export async function readNpyEdges(path: string): Promise<EdgeList> {
  const src = await FileByteSource.open(path);
  try {
    if (src.size < 10) throw new InputError(`${path}: not a .npy file (too short)`);
    const head = await src.read(0, Math.min(src.size, 12));
    if (!MAGIC.every((b, i) => head[i] === b)) throw new InputError(`${path}: not a .npy file (bad magic bytes)`);
    const major = head[6];
    const view = new DataView(head.buffer, head.byteOffset, head.length);
    const wide = major >= 2;
    if (wide && head.length < 12) throw new InputError(`${path}: not a .npy file (too short)`);
    const headerLen = wide ? view.getUint32(8, true) : view.getUint16(8, true);
    const dataStart = (wide ? 12 : 10) + headerLen;
    if (dataStart > src.size) throw new InputError(`${path}: .npy header runs past the end of the file`);
    const text = new TextDecoder().decode(await src.read(wide ? 12 : 10, dataStart));
    const { descr, fortran, shape } = parseHeader(path, text);
    if (descr !== '<f8' || shape.length !== 2 || shape[1] !== 3) {
      throw new InputError(`${path}: expected a float64 array of shape (E, 3) (rows src, dst, w); got dtype ${descr} shape (${shape.join(', ')})`);
    }
    const E = shape[0];
    const need = E * 3 * 8;
    if (src.size - dataStart < need) {
      throw new InputError(`${path}: truncated: shape (${E}, 3) needs ${need} data bytes, file has ${src.size - dataStart}`);
    }
    // Read into shared memory: thread shards then read the weights in place, never copied.
    const all = new Float64Array(new SharedArrayBuffer(need));
    await src.read(dataStart, dataStart + need, new Uint8Array(all.buffer));
    const out = fortran ? edgesFromColumns(all.subarray(0, E), all.subarray(E, 2 * E), all.subarray(2 * E)) : edgesFromRows(all);
    checkNodeIds(path, out);
    return out;
  } finally {
    await src.close();
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
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength), total);
  return out;
}

export async function writeNpyEdges(path: string, rows: Float64Array): Promise<void> {
  await writeFileAtomic(path, npyEdgeBytes(rows));
}

