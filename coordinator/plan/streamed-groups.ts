import { InputError } from '../../proto/errors.js';
import type { ShardTask } from '../../proto/shard.js';
import { edgesFromColumns, firstBadNodeId, nodeIdError, type EdgeBlock, type EdgeStream } from '../../worker/io/edge-list.js';
import { groupBySource, type EdgeGroups } from '../../worker/plan/edge-groups.js';
import { RangePlanner } from './range-planner.js';
import { groupRanges } from '../../worker/plan/shard-plan.js';

/** Builds the shard tasks of `ranges` (groupTasks with the measure and parameters bound). */
export type TaskMaker = (groups: EdgeGroups, ranges: Array<[number, number]>, firstId: number) => ShardTask[];

/**
 * Groups a streamed edge list by source node — the same nodes, per-node weight order and shard
 * ranges as groupBySource + groupRanges, so results are bit-identical — holding only the
 * weights (8 bytes an edge, not the file's 24) and calling `ready` for each shard as soon as its
 * weights are in:
 * - a `.npy` written source by source in increasing id (what the reference and `nin`-analysed
 *   pipelines usually hold) takes one pass: shards start while the rest of the file is read;
 * - otherwise the first pass counts edges per node and a second pass drops each weight into its
 *   node's slot, starting a shard once all of its edges are placed (a CSV always takes two passes:
 *   its edge count is known only at its end);
 * - ids too large or negative for a counting array fall back to holding the (src, w) columns.
 * A shard started on the guess that the file is sorted is dropped when it turns out not to be:
 * only the returned tasks count.
 */
export async function groupEdgeStream(stream: EdgeStream, shards: number, makeTasks: TaskMaker, ready: (task: ShardTask) => void): Promise<{ groups: EdgeGroups; tasks: ShardTask[] }> {
  const declared = stream.declaredCount;
  const survey = new Survey(declared === undefined ? GrowingWeights.reserve(stream.maxEdges) : new GrowingWeights(sharedFloat64(declared)), stream.maxEdges, stream.path);
  // With the edge count known up front, each shard's range is final as soon as the file reaches it.
  const planner = declared === undefined ? undefined : new RangePlanner(declared, shards);
  const launched: ShardTask[] = [];
  const launch = (ranges: Array<[number, number]>) => {
    for (const task of makeTasks(survey.groups(), ranges, launched.length)) {
      launched.push(task);
      ready(task);
    }
  };
  const E = await stream.scan(
    (block) => {
      survey.add(block);
      if (planner && survey.fused) launch(planner.next(survey.offsets, survey.nodes, false));
    },
    { checkIds: false },
  );
  if (E === 0) throw new InputError(`${stream.path}: the edge list is empty`);
  if (survey.fused) {
    survey.offsets[survey.nodes] = E;
    launch(planner ? planner.next(survey.offsets, survey.nodes, true) : groupRanges(survey.groups(), shards));
    return { groups: survey.groups(), tasks: launched };
  }
  if (!survey.countable()) return heldGroups(stream, E, shards, makeTasks, ready);
  // The first pass's buffer is reused unless shards started on the guess of a sorted file may still read it.
  const weights = survey.weights && launched.length === 0 ? survey.weights.holding(E) : sharedFloat64(E);
  const plan = survey.sorted ? survey.runPlan(E, weights) : survey.countPlan(E, weights);
  const ranges = groupRanges(plan.groups, shards);
  const tasks = makeTasks(plan.groups, ranges, 0);
  await secondPass(stream, E, plan, ranges, tasks, ready);
  return { groups: plan.groups, tasks };
}

/** ES2024's growable SharedArrayBuffer (Node 20 has it; the TypeScript lib here predates it). */
type GrowableSharedArrayBuffer = SharedArrayBuffer & { grow(byteLength: number): void; readonly maxByteLength: number };
const GrowableShared = SharedArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => GrowableSharedArrayBuffer;

/**
 * The weights in shared memory: sized by the header for a `.npy`; for a CSV, whose edge count
 * shows only at its end, a growable SharedArrayBuffer reserved for the most edges the file can
 * hold, whose pages are touched only as edges arrive (no copy when it grows).
 */
class GrowingWeights {
  constructor(
    private array: Float64Array,
    private readonly buffer?: GrowableSharedArrayBuffer,
  ) {}

  /** A growable buffer for up to `maxEdges`, or undefined where the runtime cannot reserve that much (then two passes). */
  static reserve(maxEdges: number): GrowingWeights | undefined {
    try {
      const buffer = new GrowableShared(0, { maxByteLength: Math.max(8, maxEdges * 8) });
      return new GrowingWeights(new Float64Array(buffer), buffer);
    } catch {
      return undefined;
    }
  }

  /** The array, holding at least n weights. */
  holding(n: number): Float64Array {
    if (n > this.array.length && this.buffer) {
      this.buffer.grow(Math.min(this.buffer.maxByteLength, Math.max(2 * this.buffer.byteLength, n * 8, 1 << 16)));
      this.array = new Float64Array(this.buffer);
    }
    return this.array;
  }
}

/** Ids a counting array cannot hold: the (src, w) columns are kept whole and grouped as groupBySource does. */
async function heldGroups(stream: EdgeStream, E: number, shards: number, makeTasks: TaskMaker, ready: (task: ShardTask) => void): Promise<{ groups: EdgeGroups; tasks: ShardTask[] }> {
  const src = new Float64Array(E);
  const w = new Float64Array(E);
  const seen = await stream.scan((b) => {
    if (b.first + b.count > E) throw changedError(stream.path);
    for (let i = 0, j = 0; i < b.count; i++, j += b.stride) {
      src[b.first + i] = b.src[j];
      w[b.first + i] = b.w[j];
    }
  });
  if (seen !== E) throw changedError(stream.path);
  const groups = groupBySource(edgesFromColumns(src, src, w));
  const tasks = makeTasks(groups, groupRanges(groups, shards), 0);
  for (const task of tasks) ready(task);
  return { groups, tasks };
}

/** Checks the node ids of edges [from, count) of a block that the stream left unchecked. */
function checkIdsFrom(path: string, b: EdgeBlock, from: number): void {
  const at = from * b.stride;
  const bad = firstBadNodeId({ ...b, count: b.count - from, src: b.src.subarray(at), dst: b.dst.subarray(at) });
  if (bad >= 0) throw nodeIdError(path, b.first + from + bad, b.src[at + bad * b.stride], b.dst[at + bad * b.stride]);
}

const changedError = (path: string) => new InputError(`${path}: the file changed while it was read`);

function sharedFloat64(n: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(n * 8));
}

/**
 * First pass: while the sources never decrease, the runs of equal sources are the nodes (and
 * with a known edge count the weights are copied into place at once: `fused`); from the first
 * decrease on, edges are counted per source id instead. The stream leaves the node ids to it
 * (checked in the same loop that reads the sources, not in a pass of their own).
 */
class Survey {
  sorted = true;
  nodes = 0;
  ids = new Float64Array(1024);
  offsets = new Uint32Array(1025);
  /** Per source id, once the input is known to be unsorted; null when ids do not fit an array. */
  counts: Uint32Array | null = null;
  edges = 0;
  /** The source of the last node; NaN before the first edge (then any integer starts a node). */
  private prev = NaN;
  private countsFailed = false;
  /** Where a sorted pass without reserved weights copies them anyway (one loop for both): one block, reused. */
  private scratch = new Float64Array(0);

  constructor(
    readonly weights: GrowingWeights | undefined,
    /** Bounds the counting array as groupBySource does: ids below max(2^24, 4E). */
    private readonly maxEdges: number,
    private readonly path: string,
  ) {}

  get fused(): boolean {
    return this.sorted && this.weights !== undefined;
  }

  /** The groups decided so far (fused pass): views that tasks may take. */
  groups(): EdgeGroups {
    return { nodes: this.ids.subarray(0, this.nodes), offsets: this.offsets.subarray(0, this.nodes + 1), weights: this.weights!.holding(this.edges), stride: 1 };
  }

  add(b: EdgeBlock): void {
    const { src, dst, w, stride, count } = b;
    const base = this.edges;
    let i = 0;
    if (this.sorted) {
      this.room(count);
      if (this.weights) i = this.extend(src, dst, w, stride, count, base, this.weights.holding(base + count), base);
      else i = this.extend(src, dst, w, stride, count, base, this.scratch.length >= count ? this.scratch : (this.scratch = new Float64Array(count)), 0);
    }
    if (i === count) {
      this.edges += count;
      return;
    }
    // Edge i is a bad id (an error) or a source below the last: unsorted from here.
    checkIdsFrom(this.path, b, i);
    if (this.sorted) this.unsorted(base + i);
    if (!this.countsFailed) this.count(src, stride, i, count);
    this.edges += count;
  }

  /**
   * The sorted pass's loop: extends the runs of equal sources and copies weight i to
   * into[at + i], checking the node ids on the way (a source only where its node starts: the rest
   * of a run repeats it). Returns the first edge that is anything else — a bad id or a decrease —
   * or count.
   */
  private extend(src: Float64Array, dst: Float64Array, w: Float64Array, stride: number, count: number, base: number, into: Float64Array, at: number): number {
    const { ids, offsets } = this;
    let prev = this.prev;
    let n = this.nodes;
    let i = 0;
    for (let j = 0; i < count; i++, j += stride) {
      const s = src[j];
      if (!Number.isInteger(dst[j])) break;
      if (s !== prev) {
        // NaN and fractions fail the first test; nothing is below the NaN before the first edge.
        if (!Number.isInteger(s) || s < prev) break;
        ids[n] = s;
        offsets[n++] = base + i;
        prev = s;
      }
      into[at + i] = w[j];
    }
    this.prev = prev;
    this.nodes = n;
    return i;
  }

  private count(src: Float64Array, stride: number, from: number, count: number): void {
    let counts = this.counts!;
    for (let i = from, j = from * stride; i < count; i++, j += stride) {
      const s = src[j];
      if (s >= counts.length) {
        if (!this.fits(s)) return;
        counts = this.counts!;
      } else if (s < 0) {
        this.countsFailed = true;
        return;
      }
      // An integer index (ids here are below 2^31): a float key takes V8's slow element path.
      counts[s >>> 0]++;
    }
  }

  countable(): boolean {
    return this.sorted || !this.countsFailed;
  }

  /** Nodes and offsets from the runs of a sorted input. */
  runPlan(E: number, weights: Float64Array): Plan {
    const nodes = this.ids.slice(0, this.nodes);
    const offsets = this.offsets.slice(0, this.nodes + 1);
    offsets[this.nodes] = E;
    return { groups: { nodes, offsets, weights, stride: 1 }, slotOf: null };
  }

  /** Nodes in increasing id and each id's first slot, from the counts (a counting sort, stable). */
  countPlan(E: number, weights: Float64Array): Plan {
    const counts = this.counts!;
    let nodes = 0;
    for (let id = 0; id < counts.length; id++) if (counts[id] !== 0) nodes++;
    const ids = new Float64Array(nodes);
    const offsets = new Uint32Array(nodes + 1);
    // counts becomes each id's next free slot.
    let n = 0;
    let at = 0;
    for (let id = 0; id < counts.length; id++) {
      const c = counts[id];
      if (c === 0) continue;
      ids[n] = id;
      offsets[n++] = at;
      counts[id] = at;
      at += c;
    }
    offsets[nodes] = E;
    return { groups: { nodes: ids, offsets, weights, stride: 1 }, slotOf: counts };
  }

  /** Room for `count` more nodes (a block starts at most one per edge), so the loop never grows them. */
  private room(count: number): void {
    if (this.nodes + count <= this.ids.length) return;
    const ids = new Float64Array(Math.max(2 * this.ids.length, this.nodes + count));
    ids.set(this.ids.subarray(0, this.nodes));
    const offsets = new Uint32Array(ids.length + 1);
    offsets.set(this.offsets.subarray(0, this.nodes + 1));
    this.ids = ids;
    this.offsets = offsets;
  }

  /** From edge `at` on the sources decrease somewhere: count per id, starting from the runs so far. */
  private unsorted(at: number): void {
    this.sorted = false;
    this.counts = new Uint32Array(1024);
    for (let r = 0; r < this.nodes && !this.countsFailed; r++) {
      const id = this.ids[r];
      if (id < 0 || (id >= this.counts.length && !this.fits(id))) {
        this.countsFailed = true;
        break;
      }
      this.counts[id] += (r + 1 < this.nodes ? this.offsets[r + 1] : at) - this.offsets[r];
    }
  }

  /** Grows the counts to hold `id`, as groupBySource's counting sort allows: ids below max(2^24, 4E) (and 2^31). */
  private fits(id: number): boolean {
    const limit = Math.min(2 ** 31, Math.max(1 << 24, 4 * this.maxEdges));
    if (id >= limit) {
      this.countsFailed = true;
      return false;
    }
    const counts = new Uint32Array(Math.min(limit, Math.max(2 * this.counts!.length, id + 1)));
    counts.set(this.counts!);
    this.counts = counts;
    return true;
  }
}

interface Plan {
  groups: EdgeGroups;
  /** Unsorted input: each source id's next free slot in the weights; sorted: null (in order). */
  slotOf: Uint32Array | null;
}

/**
 * Second pass: places every weight (in order for a sorted input, in its id's next slot
 * otherwise) and starts each shard once all its edges are placed. The plan came from the first
 * pass, so a file that changed in between is refused rather than misread.
 */
async function secondPass(stream: EdgeStream, E: number, plan: Plan, ranges: Array<[number, number]>, tasks: ShardTask[], ready: (task: ShardTask) => void): Promise<void> {
  const changed = () => changedError(stream.path);
  const place = plan.slotOf ? scatter(plan.groups, plan.slotOf, ranges, tasks, ready, E, changed) : inOrder(plan.groups, ranges, tasks, ready, E, changed);
  if ((await stream.scan(place)) !== E) throw changed();
  if (plan.slotOf) {
    const { nodes, offsets } = plan.groups;
    // A file that changed between the passes leaves some id short of, or past, its count.
    for (let n = 0; n < nodes.length; n++) if (plan.slotOf[nodes[n]] !== offsets[n + 1]) throw changed();
  }
}

type Place = (block: EdgeBlock) => void;

/** Unsorted input: each weight goes to its id's next slot; a shard starts once its last slot is filled. */
function scatter({ nodes, offsets, weights }: EdgeGroups, slotOf: Uint32Array, ranges: Array<[number, number]>, tasks: ShardTask[], ready: (task: ShardTask) => void, E: number, changed: () => Error): Place {
  const taskOf = new Uint32Array(slotOf.length);
  ranges.forEach(([a, b], k) => {
    for (let n = a; n < b; n++) taskOf[nodes[n]] = k;
  });
  const waiting = Float64Array.from(ranges, ([a, b]) => offsets[b] - offsets[a]);
  let placed = 0;
  return ({ src, w, stride, count }) => {
    if (placed + count > E || !scatterBlock(src, w, stride, count, slotOf, taskOf, waiting, weights)) throw changed();
    placed += count;
    for (let k = 0; k < tasks.length; k++) if (waiting[k] === 0) (waiting[k] = -1), ready(tasks[k]);
  };
}

/** The hot loop of scatter, on plain arguments (no closure state); false at an id the plan does not hold. */
function scatterBlock(src: Float64Array, w: Float64Array, stride: number, count: number, slotOf: Uint32Array, taskOf: Uint32Array, waiting: Float64Array, weights: Float64Array): boolean {
  const ids = slotOf.length;
  for (let i = 0, j = 0; i < count; i++, j += stride) {
    const s = src[j];
    if (!(s >= 0 && s < ids)) return false;
    // An integer index: a float key takes V8's slow element path.
    const id = s >>> 0;
    const slot = slotOf[id];
    weights[slot] = w[j];
    slotOf[id] = slot + 1;
    waiting[taskOf[id]]--;
  }
  return true;
}

/** Sorted input read a second time: weights in file order; shards start in order as the file reaches their end. */
function inOrder({ nodes, offsets, weights }: EdgeGroups, ranges: Array<[number, number]>, tasks: ShardTask[], ready: (task: ShardTask) => void, E: number, changed: () => Error): Place {
  let placed = 0;
  let node = 0;
  let next = 0;
  return ({ src, w, stride, count }) => {
    if (placed + count > E) throw changed();
    for (let i = 0, j = 0; i < count; i++, j += stride) {
      const e = placed + i;
      if (e === offsets[node + 1]) node++;
      if (src[j] !== nodes[node]) throw changed();
      weights[e] = w[j];
    }
    placed += count;
    while (next < tasks.length && offsets[ranges[next][1]] <= placed) ready(tasks[next++]);
  };
}
