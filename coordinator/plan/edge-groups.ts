import type { EdgeList } from '../../worker/io/npy.js';

/**
 * Out-weights grouped by source node, nodes in increasing id: node nodes[i] owns
 * weights[offsets[i] .. offsets[i+1]). The weights live in a SharedArrayBuffer so thread
 * shards read them without a copy.
 */
export interface EdgeGroups {
  nodes: Float64Array;
  offsets: Uint32Array;
  weights: Float64Array;
}

function sharedFloat64(n: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(n * 8));
}

export function groupBySource(edges: EdgeList): EdgeGroups {
  const E = edges.src.length;
  let max = -1;
  let integral = true;
  for (let e = 0; e < E; e++) {
    const s = edges.src[e];
    if (!(s >= 0 && Number.isInteger(s))) {
      integral = false;
      break;
    }
    if (s > max) max = s;
  }
  // Node ids are usually small integers: a counting sort is linear in E.
  if (integral && max < Math.max(1 << 24, 4 * E)) return countingGroups(edges, max);
  return sortedGroups(edges);
}

function countingGroups(edges: EdgeList, max: number): EdgeGroups {
  const E = edges.src.length;
  const count = new Uint32Array(max + 2);
  for (let e = 0; e < E; e++) count[edges.src[e] + 1]++;
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
  for (let e = 0; e < E; e++) weights[start[edges.src[e]]++] = edges.w[e];
  return { nodes: ids, offsets, weights };
}

function sortedGroups(edges: EdgeList): EdgeGroups {
  const E = edges.src.length;
  const order = Array.from({ length: E }, (_, i) => i).sort((a, b) => edges.src[a] - edges.src[b] || a - b);
  const weights = sharedFloat64(E);
  const ids: number[] = [];
  const offsets: number[] = [0];
  for (let k = 0; k < E; k++) {
    const e = order[k];
    if (k === 0 || edges.src[e] !== edges.src[order[k - 1]]) {
      if (k > 0) offsets.push(k);
      ids.push(edges.src[e]);
    }
    weights[k] = edges.w[e];
  }
  if (E > 0) offsets.push(E);
  return { nodes: Float64Array.from(ids), offsets: Uint32Array.from(offsets), weights };
}
