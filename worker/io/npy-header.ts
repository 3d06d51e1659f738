import { InputError } from '../../proto/errors.js';

/** What a `.npy` header states: NumPy's three keys, and where the data starts. */
export interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the first data byte (magic, version, length field and header before it). */
  dataStart: number;
}

export const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** NumPy refuses longer headers unless told to trust the file (`max_header_size`, numpy >= 1.24). */
export const NPY_MAX_HEADER_BYTES = 10000;

/** Deepest nesting of tuples/lists a header value may have (a structured descr nests a few). */
const MAX_DEPTH = 16;

/** Bytes of the file's start that hold the whole header: the length field says how many. */
export function npyPreambleLength(path: string, head: Uint8Array, fileSize: number): number {
  if (fileSize < 10 || head.length < 10) throw new InputError(`${path}: not a .npy file (too short)`);
  if (!NPY_MAGIC.every((b, i) => head[i] === b)) throw new InputError(`${path}: not a .npy file (bad magic bytes)`);
  const [major, minor] = [head[6], head[7]];
  // np.lib.format reads exactly these three versions.
  if (minor !== 0 || major < 1 || major > 3) throw new InputError(`${path}: unsupported .npy format version (${major}, ${minor}); NumPy writes (1, 0), (2, 0) and (3, 0)`);
  const wide = major >= 2;
  if (wide && (fileSize < 12 || head.length < 12)) throw new InputError(`${path}: not a .npy file (too short)`);
  const view = new DataView(head.buffer, head.byteOffset, head.length);
  const headerLen = wide ? view.getUint32(8, true) : view.getUint16(8, true);
  if (headerLen > NPY_MAX_HEADER_BYTES) throw new InputError(`${path}: .npy header of ${headerLen} bytes is longer than NumPy's limit of ${NPY_MAX_HEADER_BYTES}`);
  const dataStart = (wide ? 12 : 10) + headerLen;
  if (dataStart > fileSize) throw new InputError(`${path}: .npy header runs past the end of the file`);
  return dataStart;
}

/**
 * Parses a `.npy` header from the file's first bytes (at least npyPreambleLength of them).
 * The header is a Python dict literal; NumPy reads it with `ast.literal_eval` and then wants
 * exactly the keys descr, fortran_order and shape. We parse the same literal and refuse what
 * NumPy refuses, and more: a key given twice (Python keeps the last, a regex the first: the
 * two readers would see different dtypes) and a shape that is not non-negative integers.
 */
export function parseNpyHeader(path: string, bytes: Uint8Array): NpyHeader {
  const dataStart = npyPreambleLength(path, bytes, bytes.length);
  const major = bytes[6];
  const start = major >= 2 ? 12 : 10;
  let text: string;
  try {
    // Format 3.0 allows UTF-8 in the header; 1.0 and 2.0 are latin-1.
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(bytes.subarray(start, dataStart));
  } catch {
    throw new InputError(`${path}: not a valid .npy header: not UTF-8 text`);
  }
  const dict = new LiteralParser(path, text).header();
  const descr = dict.get('descr')!;
  const fortran = dict.get('fortran_order')!;
  const shape = dict.get('shape')!;
  if (fortran.kind !== 'bool') throw new InputError(`${path}: not a valid .npy header: fortran_order is ${show(fortran)}, not True or False`);
  if (shape.kind !== 'tuple' || shape.items.some((d) => d.kind !== 'int')) {
    throw new InputError(`${path}: not a valid .npy header: shape ${show(shape)} is not a tuple of non-negative integers`);
  }
  const dims = shape.items.map((d) => (d as IntValue).value);
  if (dims.some((d) => d < 0)) throw new InputError(`${path}: not a valid .npy header: shape ${show(shape)} has a negative dimension`);
  if (dims.some((d) => !Number.isSafeInteger(d))) throw new InputError(`${path}: not a valid .npy header: shape ${show(shape)} is too large`);
  return { descr: descr.kind === 'str' ? descr.value : show(descr), fortranOrder: fortran.value, shape: dims, dataStart };
}

type IntValue = { kind: 'int'; value: number; text: string };
type Value =
  | { kind: 'str'; value: string; text: string }
  | { kind: 'bool'; value: boolean; text: string }
  | IntValue
  /** Any other number (a float, hex, a sign on a non-decimal): kept as text for the message. */
  | { kind: 'number'; text: string }
  | { kind: 'none'; text: string }
  | { kind: 'tuple' | 'list'; items: Value[]; text: string };

/** A value as the header wrote it, capped and on one line, for messages. */
function show(v: Value): string {
  const t = v.text.replace(/\s+/g, ' ');
  return t.length > 40 ? `${t.slice(0, 40)}…` : t;
}

const KEYS = ['descr', 'fortran_order', 'shape'];

/** A recursive-descent reader of the Python literals a `.npy` header may hold. */
class LiteralParser {
  private at = 0;
  constructor(
    private readonly path: string,
    private readonly text: string,
  ) {}

  header(): Map<string, Value> {
    this.space();
    this.expect('{');
    const dict = new Map<string, Value>();
    this.space();
    while (this.peek() !== '}') {
      const key = this.value(0);
      if (key.kind !== 'str') this.fail(`a key is ${show(key)}, not a string`);
      if (!KEYS.includes(key.value)) this.fail(`unknown key ${show(key)} (NumPy writes exactly 'descr', 'fortran_order' and 'shape')`);
      if (dict.has(key.value)) this.fail(`key '${key.value}' given twice`);
      this.space();
      this.expect(':');
      this.space();
      dict.set(key.value, this.value(0));
      this.space();
      if (this.peek() === ',') {
        this.at++;
        this.space();
      } else if (this.peek() !== '}') this.fail(`expected ',' or '}' at offset ${this.at}`);
    }
    this.at++;
    this.space();
    if (this.at < this.text.length) this.fail(`unexpected text after the dict at offset ${this.at}`);
    for (const k of KEYS) if (!dict.has(k)) this.fail(`missing key '${k}'`);
    return dict;
  }

  private value(depth: number): Value {
    if (depth > MAX_DEPTH) this.fail(`values nested deeper than ${MAX_DEPTH}`);
    const from = this.at;
    const c = this.peek();
    if (c === "'" || c === '"') return this.string(c);
    if (c === '(' || c === '[') return this.sequence(c, depth);
    const word = /^[A-Za-z0-9_.+-]+/.exec(this.text.slice(this.at, this.at + 64))?.[0];
    if (!word) this.fail(c === undefined ? 'the header ends inside the dict' : `unexpected ${JSON.stringify(c)} at offset ${this.at}`);
    this.at += word.length;
    const text = this.text.slice(from, this.at);
    if (word === 'True' || word === 'False') return { kind: 'bool', value: word === 'True', text };
    if (word === 'None') return { kind: 'none', text };
    // Plain decimal integers, as NumPy writes them; a minus sign is kept to name the problem.
    if (/^-?(0|[1-9][0-9]*)$/.test(word)) return { kind: 'int', value: Number(word), text };
    if (/^[+-]?[0-9.]/.test(word)) return { kind: 'number', text };
    return this.fail(`unexpected ${JSON.stringify(word.slice(0, 20))} at offset ${from}`);
  }

  private string(quote: string): Value {
    const from = this.at;
    const end = this.text.indexOf(quote, this.at + 1);
    if (end < 0) this.fail(`a string at offset ${from} never ends`);
    const value = this.text.slice(from + 1, end);
    // NumPy's writer never escapes; refusing escapes keeps one meaning for every string.
    if (/[\\\n\r]/.test(value)) this.fail(`a string at offset ${from} holds an escape or a line break`);
    this.at = end + 1;
    return { kind: 'str', value, text: this.text.slice(from, this.at) };
  }

  private sequence(open: string, depth: number): Value {
    const from = this.at;
    const close = open === '(' ? ')' : ']';
    this.at++;
    const items: Value[] = [];
    let comma = false;
    this.space();
    while (this.peek() !== close) {
      items.push(this.value(depth + 1));
      this.space();
      comma = this.peek() === ',';
      if (comma) {
        this.at++;
        this.space();
      } else if (this.peek() !== close) this.fail(`expected ',' or '${close}' at offset ${this.at}`);
    }
    this.at++;
    const text = this.text.slice(from, this.at);
    // `(5)` is the integer 5 in Python, not a tuple: a one-tuple needs its comma.
    if (open === '(' && items.length === 1 && !comma) return { ...items[0], text };
    return { kind: open === '(' ? 'tuple' : 'list', items, text };
  }

  private space(): void {
    while (this.at < this.text.length && ' \t\n\r'.includes(this.text[this.at])) this.at++;
  }

  private peek(): string | undefined {
    return this.text[this.at];
  }

  private expect(c: string): void {
    if (this.peek() !== c) this.fail(`expected '${c}' at offset ${this.at}`);
    this.at++;
  }

  private fail(why: string): never {
    throw new InputError(`${this.path}: not a valid .npy header: ${why}`);
  }
}
