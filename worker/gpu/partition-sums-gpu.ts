import type { BoxMass } from '../kernel/box-mass.js';
import type { BackendName } from './backends.js';
import { partitionSumsOf, type PartitionPartial } from '../kernel/partition-sums.js';
import { DEFAULT_BLOCK, blockSumsProgram } from './block-sums-program.js';
import { denseChunk, float32Powers, rowIndexer, shardLayout, type ShardLayout } from './dense-layout.js';
import { GpuKernelError, reasonOf } from './errors.js';
import type { KernelRunner } from './gpujs-runner.js';
import type { KernelProgram } from './program.js';

/** Why a shard ran on f64 instead of the backend asked for. */
export type FallbackKind =
  /** Too small or too sparse for the dense kernel to pay: by design, not a problem. */
  | 'cpu-forward'
  /** Outside what float32 or the kernel's index range can hold exactly. */
  | 'unsupported'
  /** The backend threw or degraded on this shard; it stays off for the rest of its life. */
  | 'failed'
  /** The backend failed on an earlier shard (reported then) and is off. */
  | 'off';

/** A shard's partial sums (the f64 path's layout exactly) and who computed them. */
export interface BackendPartial extends PartitionPartial {
  /** The backend that produced `sums`: `f64` or a gpu.js mode. */
  backend: BackendName;
  fallbackKind?: FallbackKind;
  fallbackReason?: string;
}

export interface GpuPartitionOptions {
  /** Dense terms (selected × rows × q) below which a shard runs on f64. @default 2^20 */
  cpuForwardTerms?: number;
  /** Dense terms per sparse term (selected × rows / hits) above which f64 runs. @default 16 */
  maxDenseRatio?: number;
  /** Nodes summed per kernel thread. @default 32 */
  block?: number;
  /** node × row cells per kernel call; larger shards go in several calls. @default 2^21 */
  maxChunkCells?: number;
}

/** Largest |q · ln N| whose powers float32 holds as normal numbers, with room for a block's sum. */
export const FLOAT32_EXPONENT_LIMIT = 80;
/** Indices and counts below 2^24 are exact in float32, where GLSL and WGSL compute them. */
const EXACT_INDEX = 2 ** 24;
/** Rows are padded to a multiple of this, so shards of one matrix share a kernel shape. */
const ROW_PAD = 8;

type Plan = { run: true; rowsPad: number; perChunk: number } | { run: false; kind: FallbackKind; reason: string };

/** Whether a shard goes to the kernel, and in what pieces. Pure: the gates, testable alone. */
export function planShard(layout: ShardLayout, q: Float64Array, o: Required<GpuPartitionOptions>): Plan {
  const Q = q.length;
  const rows = layout.present.length + 1;
  const dense = layout.selected * rows * Q;
  if (layout.selected === 0) return { run: false, kind: 'cpu-forward', reason: 'no selected node' };
  if (dense < o.cpuForwardTerms) return { run: false, kind: 'cpu-forward', reason: `${dense} terms, below the ${o.cpuForwardTerms} worth a kernel call` };
  if (layout.selected * rows > o.maxDenseRatio * layout.hits) {
    return { run: false, kind: 'cpu-forward', reason: `too sparse: ${(layout.selected * rows / layout.hits).toFixed(1)} dense terms per step, above ${o.maxDenseRatio}` };
  }
  let qMax = 0;
  for (const v of q) qMax = Math.max(qMax, Math.abs(v));
  if (qMax * Math.log(layout.maxN) > FLOAT32_EXPONENT_LIMIT) {
    return { run: false, kind: 'unsupported', reason: `(1/N)^q out of float32 range: |q| ${qMax} at N ${layout.maxN}` };
  }
  if (layout.maxN >= EXACT_INDEX) return { run: false, kind: 'unsupported', reason: `N ${layout.maxN} is not exact in float32` };
  const rowsPad = Math.ceil(rows / ROW_PAD) * ROW_PAD;
  const cells = Math.min(o.maxChunkCells, EXACT_INDEX);
  const perChunk = Math.floor(Math.min(cells / rowsPad, EXACT_INDEX / Q) / o.block) * o.block;
  if (perChunk < o.block) return { run: false, kind: 'unsupported', reason: `${rows} rows: one block of nodes exceeds ${cells} cells` };
  return { run: true, rowsPad, perChunk };
}

function withDefaults(o: GpuPartitionOptions): Required<GpuPartitionOptions> {
  return { cpuForwardTerms: o.cpuForwardTerms ?? 2 ** 20, maxDenseRatio: o.maxDenseRatio ?? 16, block: o.block ?? DEFAULT_BLOCK, maxChunkCells: o.maxChunkCells ?? 2 ** 21 };
}

/**
 * The float32 kernel alone: the same PartitionPartial as partitionSums (same selected count,
 * present buckets and row layout), each S within SUMS_RELATIVE_BOUND of it. Throws
 * GpuKernelError when the device misbehaves; no gates: callers use planShard first.
 */
export async function partitionSumsOnRunner(
  runner: KernelRunner,
  program: KernelProgram,
  box: BoxMass,
  q: Float64Array,
  layout: ShardLayout,
  plan: { rowsPad: number; perChunk: number },
): Promise<PartitionPartial> {
  const Q = q.length;
  const { present, selected } = layout;
  const rows = present.length + 1;
  const block = program.constants.block;
  const powers = float32Powers(q, layout.maxN);
  if (Q * powers.stride >= EXACT_INDEX) throw new GpuKernelError(`power table of ${Q} × ${powers.stride} exceeds exact float32 indexing`);
  const rowOf = rowIndexer(present);
  const sums = new Float64Array(rows * Q);
  for (let first = 0; first < selected; first += plan.perChunk) {
    const count = Math.min(plan.perChunk, selected - first);
    const chunk = denseChunk(box, layout, rowOf, powers, Q, first, count, block, plan.rowsPad);
    const out = await runner.blockSums(program, { nAt: chunk.nAt, table: powers.pos, inv: chunk.inv, rows: plan.rowsPad, tableStride: powers.stride, Q, blocks: chunk.blocks });
    // Blocks in order, in float64: the reduction is deterministic and adds no float32 error.
    for (let j = 0; j < chunk.blocks; j++) {
      const bj = out[j];
      for (let r = 0; r < rows; r++) {
        const o = bj[r];
        const at = r * Q;
        for (let k = 0; k < Q; k++) sums[at + k] += o[k];
      }
    }
  }
  checkSums(sums, q, selected);
  return { selected, present, sums };
}

/**
 * Cheap proof that the device computed something sane: every S is a sum of positive terms,
 * and at q = 0 every term is exactly 1, so that column must equal the selected count.
 */
function checkSums(sums: Float64Array, q: Float64Array, selected: number): void {
  const Q = q.length;
  const zero = q.indexOf(0);
  for (let x = 0; x < sums.length; x++) {
    const v = sums[x];
    if (!(v > 0 && v < Infinity)) throw new GpuKernelError(`kernel returned S = ${v} at row ${Math.floor(x / Q)}, q = ${q[x % Q]}`);
    if (x % Q === zero && v !== selected) throw new GpuKernelError(`kernel returned S = ${v} at q = 0, expected ${selected}`);
  }
}

/**
 * Partition sums on a gpu.js runner, falling back to the f64 kernel shard by shard: small or
 * sparse shards by design (tfjs's CPU forwarding), out-of-range ones by necessity, and
 * every shard after the device has failed once (a lost or broken device rarely recovers,
 * and retrying it per shard would double every shard's time).
 */
export class GpuPartitionSums {
  private readonly options: Required<GpuPartitionOptions>;
  private readonly program: KernelProgram;
  private failure: string | null = null;

  constructor(
    readonly runner: KernelRunner,
    options: GpuPartitionOptions = {},
  ) {
    this.options = withDefaults(options);
    this.program = blockSumsProgram(this.options.block);
  }

  /** Why the device was switched off, or null while it works. */
  get failedReason(): string | null {
    return this.failure;
  }

  async partitionSums(box: BoxMass, q: Float64Array, minNeighbors: number): Promise<BackendPartial> {
    const layout = shardLayout(box, minNeighbors);
    const plan = planShard(layout, q, this.options);
    if (!plan.run) return this.f64(box, q, layout, plan.kind, plan.reason);
    if (this.failure) return this.f64(box, q, layout, 'off', `${this.runner.mode} is off after a failure: ${this.failure}`);
    try {
      const partial = await partitionSumsOnRunner(this.runner, this.program, box, q, layout, plan);
      return { ...partial, backend: this.runner.mode };
    } catch (err) {
      this.failure = reasonOf(err);
      return this.f64(box, q, layout, 'failed', this.failure);
    }
  }

  /** The f64 kernel on the selection the layout already made. */
  private f64(box: BoxMass, q: Float64Array, layout: ShardLayout, kind: FallbackKind, reason: string): BackendPartial {
    return { ...partitionSumsOf(box, q, layout), backend: 'f64', fallbackKind: kind, fallbackReason: reason };
  }

  close(): Promise<void> {
    return this.runner.close();
  }
}
