/**
 * The one contract between coordinator and workers: what a shard is and what it returns.
 * Thread messages use these types directly; gRPC and NATS codecs map onto them.
 */
import type { WireError } from './errors.js';

export interface MfaParams {
  threshold: number;
  decimals: number;
  minNeighbors: number;
  q: number[];
}

export interface NfdParams {
  threshold: number;
  decimals: number;
}

/** One stored tensor that forms rows of a logical NIN matrix W[out, in]. */
export interface MatrixPart {
  tensor: string;
  /** Safetensors file holding it, and the absolute byte offset of its data. */
  file: string;
  dataStart: number;
  dtype: 'F64' | 'F32' | 'F16' | 'BF16';
  /** Rows of W this part provides (its share of `out`). */
  rows: number;
  /** true for Conv1D weights stored [in, out]: node c is then row c of the tensor. */
  transposed: boolean;
}

/** A shard's input: node-grouped weights (edge lists) or a column range of a model matrix. */
export type ShardInput =
  | { kind: 'groups'; weights: Float64Array; stride: number; offsets: Uint32Array }
  | {
      kind: 'matrix';
      inputs: number;
      parts: MatrixPart[];
      colStart: number;
      colEnd: number;
      /** The shard's bytes, block by block (worker/matrix-histogram.ts matrixBlocks), for workers without the model on disk. */
      inline?: Uint8Array[];
    };

/**
 * A sampled shard names what to read, not bytes: the worker opens `model` (an
 * `hf://OWNER/NAME@COMMIT` pinned by the coordinator, or a path relative to the model root
 * both sides name), reads the rows `samples` need with the read planner, builds their NINs and
 * computes each as the embedded run does (worker/nin/sample-shards.ts), so the numbers are the
 * same bit for bit.
 */
export interface ModelSamples {
  kind: 'model';
  model: string;
  layerSample: number;
  samples: number[];
  /** Node-range partials per sample, cut as the embedded run cuts them. */
  shardsPerSample: number;
  /** Cut again at block boundaries, for per-layer spectra. */
  perLayer: boolean;
}

export type ShardTask =
  | { id: number; measure: 'mfa'; params: MfaParams; input: ShardInput }
  | { id: number; measure: 'nfd'; params: NfdParams; input: Extract<ShardInput, { kind: 'groups' }> }
  | { id: number; measure: 'sampled'; params: MfaParams; input: ModelSamples };

/** The shards that carry their own input (every transport's pool threads run these). */
export type InputShardTask = Exclude<ShardTask, { measure: 'sampled' }>;

/**
 * Where a shard's partition sums were computed: the float64 kernel or a gpu.js mode
 * (worker/gpu). Declared here because results carry it across every transport.
 */
export type KernelBackend = 'f64' | 'webgpu' | 'gl' | 'webasm' | 'cpu';
export const KERNEL_BACKENDS: readonly KernelBackend[] = ['f64', 'webgpu', 'gl', 'webasm', 'cpu'];

export interface ShardStats {
  /** The backend that computed this result: 'f64' after a GPU fallback, and always for nfd. */
  backend: KernelBackend;
  nodes: number;
  edges: number;
  skippedNonFinite: number;
  bytesRead: number;
  seconds: number;
}

export interface MfaShardResult extends ShardStats {
  id: number;
  measure: 'mfa';
  selected: number;
  /** Buckets hit by this shard's selected nodes, ascending. */
  present: Int32Array;
  /** (present.length + 1) rows × q.length; row 0 is S below present[0]. */
  sums: Float64Array;
}

export interface NfdShardResult extends ShardStats {
  id: number;
  measure: 'nfd';
  values: Float64Array;
}

/** One sample of a sampled shard: its node-range partials, as the embedded run has them. */
export interface SamplePartials {
  sample: number;
  /** sha256 of the stored elements the sample's NIN uses (worker/nin/sampled-digest.ts). */
  bytesSha256: string;
  partials: MfaShardResult[];
  /** With perLayer: the block of each partial. */
  blocks?: number[];
}

export interface SampledShardResult extends ShardStats {
  id: number;
  measure: 'sampled';
  layout: string;
  architecture: string;
  /** Blocks of the layout: per-layer spectra need the count even where a block has no partial. */
  blockCount: number;
  /** Who read and computed it (host:pid), for bytes read per worker. */
  worker: string;
  /** HTTP requests the worker made for it (0 for a file under its model root). */
  requests: number;
  samples: SamplePartials[];
}

export type ShardResult = MfaShardResult | NfdShardResult | SampledShardResult;

/** What a thread or remote worker sends back: a result or a typed error. */
export type ShardReply = { ok: true; result: ShardResult } | { ok: false; error: WireError };

/** A GPU backend that failed on a shard, which was then computed on f64. */
export interface BackendFallback {
  shard: number;
  backend: KernelBackend;
  reason: string;
}

/** A pool thread's settings (piscina workerData): the backend it opens once, for every shard. */
export interface ThreadData {
  partitionBackend: KernelBackend;
  /** Set when the main thread hosts the backend's device (worker/gpu/hosted-runner.ts): its channel and device name. */
  gpuHost?: { channel: string; device: string };
}

/** What a pool thread sends back: the reply, and a fallback for the main thread to log. */
export type ThreadReply = ShardReply & { fallback?: BackendFallback };
