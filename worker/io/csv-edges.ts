import { InputError } from '../../proto/errors.js';
import { FileByteSource } from './byte-source.js';
import { isCsvHeaderLine, parseCsvEdgeBytes } from './csv-line.js';
import { DEFAULT_CHUNK_BYTES, nodeIdError, type EdgeBlock, type EdgeStream } from './edge-list.js';

/** Longest line kept while looking for its end: a file without line breaks must not fill memory. */
const MAX_LINE_BYTES = 1 << 16;

/**
 * Streams a CSV edge list `src,dst,weight` (one edge a line, UTF-8 or ASCII; a first line
 * without any number is a header; blank lines are skipped) in blocks, parsing bytes in place in
 * one reused read buffer into reused block columns. Every line is checked as it is read: three
 * decimal numbers, integer node ids.
 */
export async function openCsvEdgeStream(path: string, chunkBytes = DEFAULT_CHUNK_BYTES): Promise<EdgeStream> {
  return new CsvEdgeStream(path, await FileByteSource.open(path), Math.max(1, chunkBytes));
}

class CsvEdgeStream implements EdgeStream {
  readonly declaredCount = undefined;
  readonly maxEdges: number;
  private readonly bytes: Uint8Array;
  /** A line split between two reads is put together here. */
  private readonly carry = new Uint8Array(MAX_LINE_BYTES);
  private readonly columns: Float64Array;
  private readonly perBlock: number;

  constructor(
    readonly path: string,
    private readonly source: FileByteSource,
    chunkBytes: number,
  ) {
    this.bytes = new Uint8Array(Math.min(chunkBytes, Math.max(1, source.size)));
    this.perBlock = Math.max(1, Math.floor(chunkBytes / 24));
    this.columns = new Float64Array(3 * this.perBlock);
    this.maxEdges = Math.floor((source.size + 1) / 6);
  }

  async scan(onBlock: (block: EdgeBlock) => void): Promise<number> {
    const { path, perBlock: k, columns, carry, source } = this;
    const block: EdgeBlock = { first: 0, count: 0, stride: 1, src: columns.subarray(0, k), dst: columns.subarray(k, 2 * k), w: columns.subarray(2 * k) };
    const row = new Float64Array(3);
    let edges = 0;
    let lineNumber = 0;
    let headerChecked = false;
    const line = (bytes: Uint8Array, start: number, end: number) => {
      lineNumber++;
      if (!headerChecked) {
        // A byte-order mark before the first line is not part of it.
        if (lineNumber === 1 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf) start += 3;
        const text = new TextDecoder().decode(bytes.subarray(start, Math.min(end, start + MAX_LINE_BYTES)));
        if (text.trim() === '') return;
        headerChecked = true;
        if (isCsvHeaderLine(text)) return;
      }
      if (!parseCsvEdgeBytes(path, lineNumber, bytes, start, end, row)) return;
      if (!Number.isInteger(row[0]) || !Number.isInteger(row[1])) throw nodeIdError(`${path}:${lineNumber}`, edges, row[0], row[1]);
      const i = block.count++;
      block.src[i] = row[0];
      block.dst[i] = row[1];
      block.w[i] = row[2];
      edges++;
      if (block.count === k) flush();
    };
    const flush = () => {
      if (block.count > 0) onBlock(block);
      block.first = edges;
      block.count = 0;
    };
    let carried = 0;
    for (let at = 0; at < source.size; at += this.bytes.length) {
      const n = Math.min(this.bytes.length, source.size - at);
      const bytes = await source.read(at, at + n, this.bytes.subarray(0, n));
      let start = 0;
      let nl = bytes.indexOf(10);
      if (carried > 0 && nl >= 0) {
        // The first line of this read ends the line the last read began.
        if (carried + nl > MAX_LINE_BYTES) throw tooLong(path, lineNumber + 1);
        carry.set(bytes.subarray(0, nl), carried);
        line(carry, 0, carried + nl);
        carried = 0;
        start = nl + 1;
        nl = bytes.indexOf(10, start);
      }
      for (; nl >= 0; nl = bytes.indexOf(10, start)) {
        line(bytes, start, nl);
        start = nl + 1;
      }
      if (carried + n - start > MAX_LINE_BYTES) throw tooLong(path, lineNumber + 1);
      carry.set(bytes.subarray(start), carried);
      carried += n - start;
    }
    if (carried > 0) line(carry, 0, carried);
    flush();
    return edges;
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}

const tooLong = (path: string, lineNumber: number) => new InputError(`${path}:${lineNumber}: line longer than ${MAX_LINE_BYTES} bytes`);
