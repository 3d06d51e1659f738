/**
 * The NATS exchange of one shard. NATS frames messages but caps them (max_payload, 1 MB by
 * default), and a shard with inline weight bytes is tens of MB, so one encoded ShardTask or
 * ShardReply travels as numbered chunks; these headers say which. gRPC needs none of this.
 *
 *   client → <subject> (queue group)  kind=task chunk=0 chunks=n bytes=B   reply=<client inbox>
 *   worker → <client inbox>           kind=continue upload=<worker inbox>    (after chunks 0..n-2)
 *   client → <worker inbox>           kind=task chunk=k                       (k = 1..n-1, one per continue)
 *   worker → <client inbox>           kind=working                            (on start, then every heartbeat)
 *   worker → <client inbox>           kind=reply chunk=j chunks=m bytes=B'    (j = 0..m-1, in order)
 *
 * Chunk 0 goes to the queue group, so it picks the worker; the rest go to that worker's own
 * inbox. The upload is stop-and-wait (one chunk per `continue`), so neither side ever has
 * more than one chunk in flight; reply chunks are pushed in order (NATS keeps the order of
 * one publisher's messages to one subscriber). A message without these headers is a whole
 * ShardTask, so `nats request <subject>` with msgpack bytes works for manual checks: a
 * malformed one's first answer is its refusal, a valid one's is `working`.
 */
import { MessageFormatError } from './errors.js';

/** The subject of a deployment unless `--subject` names another; workers share one queue group on it. */
export const DEFAULT_SUBJECT = 'neuromfa.shards';
export const QUEUE_GROUP = 'neuromfa-workers';

/** Where every worker of a deployment (not one of the queue group) answers describe. */
export function describeSubject(subject: string): string {
  return `${subject}.describe`;
}

export const HEADERS = {
  kind: 'Neuromfa-Kind',
  chunk: 'Neuromfa-Chunk',
  chunks: 'Neuromfa-Chunks',
  bytes: 'Neuromfa-Bytes',
  upload: 'Neuromfa-Upload',
} as const;

export type ExchangeKind = 'task' | 'continue' | 'working' | 'reply';
export const EXCHANGE_KINDS: readonly ExchangeKind[] = ['task', 'continue', 'working', 'reply'];

/** Room kept in each message for our headers and the subjects, below the server's max_payload. */
export const HEADER_ROOM = 512;

/** Data bytes per chunk for a server with this max_payload. */
export function chunkBytes(maxPayload: number): number {
  return Math.max(1024, maxPayload - HEADER_ROOM);
}

/** Views of `bytes`, `size` at most each; always at least one (possibly empty) chunk. */
export function splitChunks(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length || out.length === 0; at += size) out.push(bytes.subarray(at, Math.min(bytes.length, at + size)));
  return out;
}

/** Parses a numeric header strictly: absent, empty or non-integer values are rejected. */
export function headerInt(value: string | undefined, name: string, min: number, max: number): number {
  const v = value === undefined || !/^\d+$/.test(value) ? NaN : Number(value);
  if (!(v >= min && v <= max)) throw new MessageFormatError(`header ${name}: expected an integer in [${min}, ${max}], got ${JSON.stringify(value ?? null)}`);
  return v;
}

/**
 * Collects chunks 0..n-1 of one message, in order, into exactly `bytes` bytes. The size is
 * checked against the cap before anything is allocated, so an announced 1 TB message costs
 * nothing but the refusal.
 */
export class Reassembly {
  private readonly buffer: Uint8Array;
  private filled = 0;
  private next = 0;

  constructor(
    readonly chunks: number,
    readonly bytes: number,
    maxBytes: number,
  ) {
    if (bytes > maxBytes) {
      throw new MessageFormatError(`message of ${bytes} bytes is over the ${maxBytes}-byte limit: plan smaller shards (--shard-mb) or raise --max-message-mb`);
    }
    if (chunks < 1 || chunks > bytes + 1) throw new MessageFormatError(`message of ${bytes} bytes cannot come in ${chunks} chunks`);
    this.buffer = new Uint8Array(bytes);
  }

  get done(): boolean {
    return this.next === this.chunks;
  }

  /** Adds chunk `index`; it must be the next one and must not overflow the announced size. */
  add(index: number, data: Uint8Array): void {
    if (index !== this.next) throw new MessageFormatError(`chunk ${index} arrived where chunk ${this.next} of ${this.chunks} was expected`);
    if (this.filled + data.length > this.bytes) throw new MessageFormatError(`chunks exceed the announced ${this.bytes} bytes`);
    this.buffer.set(data, this.filled);
    this.filled += data.length;
    this.next++;
    if (this.done && this.filled !== this.bytes) throw new MessageFormatError(`chunks hold ${this.filled} bytes, ${this.bytes} were announced`);
  }

  /** The whole message; only once every chunk has arrived. */
  message(): Uint8Array {
    if (!this.done) throw new MessageFormatError(`message incomplete: ${this.next} of ${this.chunks} chunks`);
    return this.buffer;
  }
}
