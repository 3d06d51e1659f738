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
  /** The backend its shards' partition sums run on (`--backend`, auto resolved): f64 or a gpu.js mode. */
  backend: string;
  /** Every partition-sum backend of this build, and whether it runs on this machine. */
  backends: BackendAvailability[];
  /** Transports the worker serves: "grpc", "nats". */
  transports: string[];
  /** True when it reads weights by path under --model-root; false: inline bytes only. */
  readsFiles: boolean;
  /** The largest message it accepts, in bytes. */
  maxMessageBytes: number;
  /** Host name, for logs and the progress display. */
  host: string;
}

/** One backend as a worker's probe found it (worker/gpu probeBackends). */
export interface BackendAvailability {
  name: string;
  available: boolean;
  /** What it runs on when available (`webasm, 1 thread`, the WebGPU adapter), else why not. */
  detail: string;
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
  const backends = () => {
    const v = o.backends;
    if (!Array.isArray(v)) throw reject('backends', 'a list', v);
    return v.map((b: unknown, k): BackendAvailability => {
      const at = `backends[${k}]`;
      if (typeof b !== 'object' || b === null || Array.isArray(b)) throw reject(at, 'a map', b);
      const { name, available, detail } = b as Record<string, unknown>;
      if (typeof name !== 'string') throw reject(`${at}.name`, 'a string', name);
      if (typeof available !== 'boolean') throw reject(`${at}.available`, 'a boolean', available);
      if (typeof detail !== 'string') throw reject(`${at}.detail`, 'a string', detail);
      return { name, available, detail };
    });
  };
  if (typeof o.readsFiles !== 'boolean') throw reject('readsFiles', 'a boolean', o.readsFiles);
  return {
    version: s('version'),
    threads: n('threads', 1),
    backend: s('backend'),
    backends: backends(),
    transports: strings('transports'),
    readsFiles: o.readsFiles,
    maxMessageBytes: n('maxMessageBytes', 1),
    host: s('host'),
  };
}
