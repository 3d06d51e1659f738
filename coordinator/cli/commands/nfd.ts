import type { Command } from 'commander';
import { nfdOfEdgeStream } from '../../analysis/edge-analysis.js';
import { json, threadsFrom, withBackend, type CliContext } from '../context.js';
import { parseDecimals, parseInteger, parseThreshold } from '../flags.js';
import { withEdgeStream } from '../read-edges.js';
import { addRunFlags, type CommandSpec } from './common.js';
import { addModelNfdFlags, isEdgeListPath, refuseModelFlags, runModelNfd } from './nfd-model.js';

export const nfdCommand = {
  name: 'nfd',
  summary: 'node fractal dimension of every source node of an edge list, or of every neuron of a checkpoint',
  configure(cmd: Command) {
    cmd.argument('<input>', 'edge list (.npy float64 (E, 3) or .csv src,dst,weight), or MODEL: a checkpoint as analyze takes it (directory, .safetensors, .bin, hf://)');
    cmd.option('--threshold <T>', 'keep distances 1/|w| in (0, T]', '200');
    cmd.option('--decimals <p>', 'round distances to p decimals (0-6), half to even', '0');
    addRunFlags(cmd);
    addModelNfdFlags(cmd);
  },
  async run(ctx: CliContext, [path]: string[], o: Record<string, string | boolean | undefined>) {
    const params = { threshold: parseThreshold('--threshold', o.threshold as string), decimals: parseDecimals('--decimals', o.decimals as string) };
    if (!isEdgeListPath(path)) return runModelNfd(ctx, path, o, params);
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
  },
} satisfies CommandSpec;
