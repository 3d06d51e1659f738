/**
 * What a worker says about itself (gRPC Describe, NATS `<subject>.describe`). The coordinator
 * uses it to size its in-flight window (threads) and to know whether it must ship bytes
 * (readsFiles is false for a worker started without --model-root).
 */
export interface WorkerDescription {
  /** neuromfa version of the worker (package.json). */
  version: string;
  /** Threads of its shard pool: shards it runs at once. */
  threads: number;
  /** The kernel backend shards run on, e.g. "threads". */
  backend: string;
  /** Kernel backends this build can run. */
  backends: string[];
  /** Transports the worker serves: "grpc", "nats". */
  transports: string[];
  /** True when it reads weights by path under --model-root; false: inline bytes only. */
  readsFiles: boolean;
  /** The largest message it accepts, in bytes. */
  maxMessageBytes: number;
  /** Host name, for logs and the progress display. */
  host: string;
}

type Reject = (path: string, want: string, got: unknown) => Error;

/** Checks a decoded description field by field (the codec supplies the error to throw). */
export function checkDescription(o: Record<string, unknown>, reject: Reject): WorkerDescription {
  const s = (k: string) => {
    if (typeof o[k] !== 'string') throw reject(k, 'a string', o[k]);
    return o[k] as string;
  };
  const n = (k: string, min: number) => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw reject(k, `an integer >= ${min}`, v);
    return v;
  };
  const strings = (k: string) => {
    const v = o[k];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw reject(k, 'a list of strings', v);
    return v as string[];
  };
  if (typeof o.readsFiles !== 'boolean') throw reject('readsFiles', 'a boolean', o.readsFiles);
  return {
    version: s('version'),
    threads: n('threads', 1),
    backend: s('backend'),
    backends: strings('backends'),
    transports: strings('transports'),
    readsFiles: o.readsFiles,
    maxMessageBytes: n('maxMessageBytes', 1),
    host: s('host'),
  };
}
