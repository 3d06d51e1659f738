import { InputError } from '../../proto/errors.js';
import { MAX_PICKLE_BYTES, shown } from '../../proto/limits.js';

/**
 * An allow-list unpickler for the data.pkl of a torch.save checkpoint. Python's pickle is a
 * small stack machine whose GLOBAL + REDUCE opcodes call any importable function — a .bin
 * downloaded from the hub can run `os.system` on load (the reason safetensors exists). Here
 * nothing is executed: a GLOBAL is looked up in the caller's table of plain JS functions,
 * and any name not in it is an error naming it. Protocol 2 is what torch.save writes; the
 * few protocol 4 opcodes are accepted too, since they are as inert as the rest.
 * Opcode reference: CPython Lib/pickletools.py.
 */

/** A Python object the caller allowed, standing for `module.name`. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly call: (...args: unknown[]) => unknown,
  ) {}
}

export interface UnpickleHooks {
  /** The JS stand-in for an allowed global, or undefined to refuse it. */
  global(module: string, name: string): ((...args: unknown[]) => unknown) | undefined;
  /** BINPERSID: torch names its tensor storages this way. */
  persistentLoad(pid: unknown): unknown;
}

// Opcodes by their byte value (pickletools names).
const OP = {
  PROTO: 0x80, FRAME: 0x95, STOP: 0x2e, MARK: 0x28, POP: 0x30, POP_MARK: 0x31, DUP: 0x32,
  NONE: 0x4e, NEWTRUE: 0x88, NEWFALSE: 0x89,
  BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, LONG1: 0x8a, LONG4: 0x8b, BINFLOAT: 0x47,
  BINUNICODE: 0x58, SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINSTRING: 0x54, SHORT_BINSTRING: 0x55,
  BINBYTES: 0x42, SHORT_BINBYTES: 0x43, BINBYTES8: 0x8e,
  EMPTY_TUPLE: 0x29, TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  EMPTY_LIST: 0x5d, APPEND: 0x61, APPENDS: 0x65, LIST: 0x6c,
  EMPTY_DICT: 0x7d, DICT: 0x64, SETITEM: 0x73, SETITEMS: 0x75,
  GLOBAL: 0x63, STACK_GLOBAL: 0x93, REDUCE: 0x52, BUILD: 0x62, BINPERSID: 0x51,
  BINPUT: 0x71, LONG_BINPUT: 0x72, MEMOIZE: 0x94, BINGET: 0x68, LONG_BINGET: 0x6a,
} as const;

const MARK = Symbol('mark');
const MAX_GLOBAL_LINE = 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/**
 * Little-endian two's complement (LONG1/LONG4); torch's sizes and offsets fit in 2^53. The
 * length is checked before decoding: a 200 KB operand decoded first took quadratic time (and
 * its digits made a 240 KB error line). Python may pad with sign bytes, so a long operand is
 * fine as long as everything above 8 bytes is sign extension.
 */
function decodeLong(b: Uint8Array, fail: (m: string) => never): number {
  const negative = b.length > 0 && (b[b.length - 1] & 0x80) !== 0;
  for (let i = 8; i < b.length; i++) if (b[i] !== (negative ? 0xff : 0)) fail(`a ${b.length}-byte integer is beyond 2^53`);
  const n = Math.min(b.length, 8);
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (negative) v -= 1n << BigInt(8 * n);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) fail(`integer ${v} is beyond 2^53`);
  return Number(v);
}

export function unpickle(bytes: Uint8Array, hooks: UnpickleHooks, where: string): unknown {
  let pos = 0;
  const fail = (msg: string): never => {
    throw new InputError(`${where}: ${msg} (pickle byte ${pos})`);
  };
  if (bytes.length > MAX_PICKLE_BYTES) fail(`pickle of ${bytes.length} bytes exceeds the ${MAX_PICKLE_BYTES}-byte cap`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const need = (n: number) => {
    if (pos + n > bytes.length) fail('pickle ends in the middle of an opcode');
  };
  const take = (n: number): Uint8Array => {
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const u8 = () => take(1)[0];
  const u16 = () => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const u64 = () => decodeLong(take(8), fail);
  const line = (): string => {
    // GLOBAL names are module and attribute names: a line longer than 1 KB is not one (and
    // searching only that far keeps a pickle of GLOBALs without newlines linear).
    const newline = bytes.subarray(pos, pos + MAX_GLOBAL_LINE + 1).indexOf(0x0a);
    if (newline < 0) fail(`GLOBAL name is not a newline-terminated line of at most ${MAX_GLOBAL_LINE} bytes`);
    const end = pos + newline;
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const text = (n: number): string => {
    const raw = take(n);
    try {
      return utf8.decode(raw);
    } catch {
      return fail('string is not valid UTF-8');
    }
  };

  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const pop = (): unknown => {
    if (stack.length === 0 || stack[stack.length - 1] === MARK) fail('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0 || stack[stack.length - 1] === MARK) fail('stack underflow');
    return stack[stack.length - 1];
  };
  /** Items above the topmost MARK, removing them and the mark. */
  const popMark = (): unknown[] => {
    const m = stack.lastIndexOf(MARK);
    if (m < 0) fail('no MARK on the stack');
    const items = stack.slice(m + 1);
    stack.length = m;
    return items;
  };
  const resolve = (module: string, name: string): PickleGlobal => {
    const fn = hooks.global(module, name);
    if (!fn) fail(`refusing to load global ${shown(`${module}.${name}`)}: only tensor data is read from checkpoints, and this name is not on the allow-list`);
    return new PickleGlobal(module, name, fn!);
  };
  const setItems = (target: unknown, kv: unknown[]) => {
    if (!(target instanceof Map)) fail('SETITEM(S) on something that is not a dict');
    if (kv.length % 2 !== 0) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < kv.length; i += 2) (target as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };
  const append = (target: unknown, items: unknown[]) => {
    if (!Array.isArray(target) || Object.isFrozen(target)) fail('APPEND(S) on something that is not a list');
    // One at a time: spreading 300k items into push() overflows the call stack.
    for (const item of items) (target as unknown[]).push(item);
  };
  const tuple = (items: unknown[]) => Object.freeze(items);

  for (;;) {
    const op = u8();
    switch (op) {
      case OP.PROTO: {
        const v = u8();
        if (v > 5) fail(`unsupported pickle protocol ${v}`);
        break;
      }
      case OP.FRAME: u64(); break;
      case OP.STOP: {
        const result = pop();
        if (stack.length !== 0) fail('values left on the stack at STOP');
        return result;
      }
      case OP.MARK: stack.push(MARK); break;
      case OP.POP: pop(); break;
      case OP.POP_MARK: popMark(); break;
      case OP.DUP: stack.push(top()); break;
      case OP.NONE: stack.push(null); break;
      case OP.NEWTRUE: stack.push(true); break;
      case OP.NEWFALSE: stack.push(false); break;
      case OP.BININT: need(4); stack.push(dv.getInt32(pos, true)); pos += 4; break;
      case OP.BININT1: stack.push(u8()); break;
      case OP.BININT2: stack.push(u16()); break;
      case OP.LONG1: stack.push(decodeLong(take(u8()), fail)); break;
      case OP.LONG4: stack.push(decodeLong(take(u32()), fail)); break;
      case OP.BINFLOAT: need(8); stack.push(dv.getFloat64(pos, false)); pos += 8; break; // big-endian, unlike the rest
      case OP.BINUNICODE: stack.push(text(u32())); break;
      case OP.SHORT_BINUNICODE: stack.push(text(u8())); break;
      case OP.BINUNICODE8: stack.push(text(u64())); break;
      case OP.BINSTRING: stack.push(latin1.decode(take(u32()))); break;
      case OP.SHORT_BINSTRING: stack.push(latin1.decode(take(u8()))); break;
      case OP.BINBYTES: stack.push(take(u32()).slice()); break;
      case OP.SHORT_BINBYTES: stack.push(take(u8()).slice()); break;
      case OP.BINBYTES8: stack.push(take(u64()).slice()); break;
      case OP.EMPTY_TUPLE: stack.push(tuple([])); break;
      case OP.TUPLE: stack.push(tuple(popMark())); break;
      case OP.TUPLE1: stack.push(tuple([pop()])); break;
      case OP.TUPLE2: { const b = pop(); const a = pop(); stack.push(tuple([a, b])); break; }
      case OP.TUPLE3: { const c = pop(); const b = pop(); const a = pop(); stack.push(tuple([a, b, c])); break; }
      case OP.EMPTY_LIST: stack.push([]); break;
      case OP.LIST: stack.push(popMark()); break;
      case OP.APPEND: { const v = pop(); append(top(), [v]); break; }
      case OP.APPENDS: { const items = popMark(); append(top(), items); break; }
      case OP.EMPTY_DICT: stack.push(new Map()); break;
      case OP.DICT: { const d = new Map(); setItems(d, popMark()); stack.push(d); break; }
      case OP.SETITEM: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; }
      case OP.SETITEMS: { const kv = popMark(); setItems(top(), kv); break; }
      case OP.GLOBAL: { const module = line(); stack.push(resolve(module, line())); break; }
      case OP.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(resolve(module as string, name as string));
        break;
      }
      case OP.REDUCE: {
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PickleGlobal)) fail('REDUCE on something that is not an allowed global');
        const g = fn as PickleGlobal;
        if (!Array.isArray(args)) fail(`REDUCE of ${g.module}.${g.name} without an argument tuple`);
        // Allowed globals take a handful of arguments; spreading 300k would overflow the stack.
        if ((args as unknown[]).length > 16) fail(`REDUCE of ${g.module}.${g.name} with ${(args as unknown[]).length} arguments`);
        stack.push(g.call(...(args as unknown[])));
        break;
      }
      case OP.BUILD:
        // torch.save's OrderedDict carries `_metadata` (module versions) as BUILD state.
        // Setting state could run __setstate__ in Python; we need none of it and drop it.
        pop();
        top();
        break;
      case OP.BINPERSID: stack.push(hooks.persistentLoad(pop())); break;
      case OP.BINPUT: memo.set(u8(), top()); break;
      case OP.LONG_BINPUT: memo.set(u32(), top()); break;
      case OP.MEMOIZE: memo.set(memo.size, top()); break;
      case OP.BINGET:
      case OP.LONG_BINGET: {
        const k = op === OP.BINGET ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} was never stored`);
        stack.push(memo.get(k));
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}${op >= 0x20 && op < 0x7f ? ` (${JSON.stringify(String.fromCharCode(op))})` : ''}`);
    }
  }
}
