import { UsageError } from '../../../proto/errors.js';
import { nfdOfEdgeStream } from '../../analysis/edge-analysis.js';
import { json, threadsFrom, withBackend, type CliContext } from '../context.js';
import { parseDecimals, parseInteger, parseThreshold } from '../flags.js';
import { withEdgeStream } from '../read-edges.js';
import type { CommandOptions } from './common.js';

/** `nfd` reads an edge list when the path names one (.npy, .csv), else a checkpoint. */
const isEdgeListPath = (path: string) => /\.(npy|csv)$/i.test(path);

const MODEL_ONLY_FLAGS = { samples: '--samples', full: '--full', layerSample: '--layer-sample', shardMb: '--shard-mb', out: '--out' } as const;

/** An edge list has no samples, layers or report directory: such a flag is a mistake worth naming. */
function refuseModelFlags(path: string, o: Record<string, unknown>): void {
  const given = Object.entries(MODEL_ONLY_FLAGS).filter(([k]) => o[k] !== undefined).map(([, flag]) => flag);
  if (given.length) throw new UsageError(`${given.join(', ')} appl${given.length > 1 ? 'y' : 'ies'} to nfd MODEL (a checkpoint), but ${path} is an edge list`);
}

export async function run(ctx: CliContext, [path]: string[], o: CommandOptions): Promise<void> {
  const params = { threshold: parseThreshold('--threshold', o.threshold as string), decimals: parseDecimals('--decimals', o.decimals as string) };
  // A checkpoint's NFDs need the model readers and the report writers; an edge list's do not.
  if (!isEdgeListPath(path)) return (await import('./nfd-model.js')).runModelNfd(ctx, path, o, params);
  refuseModelFlags(path, o);
  const threads = threadsFrom(o.threads as string | undefined);
  const shards = o.shards === undefined ? threads * 2 : parseInteger('--shards', o.shards as string, 1);
  // The pool starts its threads now; shards start while the edge list is still being read.
  const { nodes, values } = await withBackend(ctx, threads, 'nfd', async (b, l) => withEdgeStream(path, (edges) => nfdOfEdgeStream(edges, params, b, shards, l)));
  if (o.json) {
    ctx.out(json({ nodes, values }));
    return;
  }
  const lines = nodes.map((n, i) => `${n}\t${values[i]}`);
  ctx.out(`# node\tnfd  (${nodes.length} source nodes of ${path}, threshold ${params.threshold}, decimals ${params.decimals})\n${lines.join('\n')}\n`);
}
