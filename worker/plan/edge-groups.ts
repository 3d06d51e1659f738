import type { EdgeList } from '../io/edge-list.js';

/**
 * Out-weights grouped by source node, nodes in increasing id: node nodes[i] owns
 * weights[e * stride] for e in [offsets[i], offsets[i+1]). The weights live in a
 * SharedArrayBuffer so thread shards read them without a copy.
 */
export interface EdgeGroups {
  nodes: Float64Array;
  offsets: Uint32Array;
  weights: Float64Array;
  stride: number;
}

function sharedFloat64(n: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(n * 8));
}

export function groupBySource(edges: EdgeList): EdgeGroups {
  const { count: E, stride, src } = edges;
  let max = -1;
  let integral = true;
  for (let e = 0; e < E * stride; e += stride) {
    const s = src[e];
    if (!(s >= 0 && Number.isInteger(s))) {
      integral = false;
      break;
    }
    if (s > max) max = s;
  }
  if (edges.w.buffer instanceof SharedArrayBuffer && isSorted(edges)) return groupsInPlace(edges);
  // Node ids are usually small integers: a counting sort is linear in E.
  if (integral && max < Math.max(1 << 24, 4 * E)) return countingGroups(edges, max);
  return sortedGroups(edges);
}

function isSorted({ count, stride, src }: EdgeList): boolean {
  for (let e = stride; e < count * stride; e += stride) if (src[e] < src[e - stride]) return false;
  return true;
}

/**
 * Edge lists written source by source (the reference's own files are) are already grouped:
 * the groups are views on the shared read buffer, with no copy of the weights.
 */
function groupsInPlace(edges: EdgeList): EdgeGroups {
  const { count: E, stride, src } = edges;
  let nodes = E > 0 ? 1 : 0;
  for (let e = 1; e < E; e++) if (src[e * stride] !== src[(e - 1) * stride]) nodes++;
  const ids = new Float64Array(nodes);
  const offsets = new Uint32Array(nodes + 1);
  let n = 0;
  for (let e = 0; e < E; e++) {
    if (e === 0 || src[e * stride] !== src[(e - 1) * stride]) {
      offsets[n] = e;
      ids[n++] = src[e * stride];
    }
  }
  offsets[nodes] = E;
  return { nodes: ids, offsets, weights: edges.w, stride };
}

function countingGroups(edges: EdgeList, max: number): EdgeGroups {
  const { count: E, stride, src, w } = edges;
  const count = new Uint32Array(max + 2);
  for (let e = 0; e < E * stride; e += stride) count[src[e] + 1]++;
  let nodes = 0;
  for (let id = 1; id <= max + 1; id++) if (count[id] !== 0) nodes++;
  const ids = new Float64Array(nodes);
  const offsets = new Uint32Array(nodes + 1);
  const start = new Uint32Array(max + 1);
  let n = 0;
  let acc = 0;
  for (let id = 0; id <= max; id++) {
    const c = count[id + 1];
    start[id] = acc;
    if (c !== 0) {
      ids[n++] = id;
      acc += c;
      offsets[n] = acc;
    }
  }
  const weights = sharedFloat64(E);
  for (let e = 0; e < E * stride; e += stride) weights[start[src[e]]++] = w[e];
  return { nodes: ids, offsets, weights, stride: 1 };
}

function sortedGroups(edges: EdgeList): EdgeGroups {
  const { count: E, stride } = edges;
  const src = (e: number) => edges.src[e * stride];
  const order = Array.from({ length: E }, (_, i) => i).sort((a, b) => src(a) - src(b) || a - b);
  const weights = sharedFloat64(E);
  const ids: number[] = [];
  const offsets: number[] = [0];
  for (let k = 0; k < E; k++) {
    const e = order[k];
    if (k === 0 || src(e) !== src(order[k - 1])) {
      if (k > 0) offsets.push(k);
      ids.push(src(e));
    }
    weights[k] = edges.w[e * stride];
  }
  if (E > 0) offsets.push(E);
  return { nodes: Float64Array.from(ids), offsets: Uint32Array.from(offsets), weights, stride: 1 };
}
