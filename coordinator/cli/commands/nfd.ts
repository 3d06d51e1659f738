import type { Command } from 'commander';
import { nfdOfGroups } from '../../analysis/edge-analysis.js';
import { groupBySource } from '../../plan/edge-groups.js';
import { json, threadsFrom, withBackend, type CliContext } from '../context.js';
import { parseDecimals, parseInteger, parseThreshold } from '../flags.js';
import { readEdges } from '../read-edges.js';
import { addRunFlags, type CommandSpec } from './common.js';

export const nfdCommand = {
  name: 'nfd',
  summary: 'node fractal dimension of every source node of an edge list',
  configure(cmd: Command) {
    cmd.argument('<edges>', 'edge list (.npy float64 (E, 3) or .csv src,dst,weight)');
    cmd.option('--threshold <T>', 'keep distances 1/|w| in (0, T]', '200');
    cmd.option('--decimals <p>', 'round distances to p decimals (0-6), half to even', '0');
    addRunFlags(cmd);
  },
  async run(ctx: CliContext, [path]: string[], o: Record<string, string | boolean | undefined>) {
    const params = { threshold: parseThreshold('--threshold', o.threshold as string), decimals: parseDecimals('--decimals', o.decimals as string) };
    const threads = threadsFrom(o.threads as string | undefined);
    const shards = o.shards === undefined ? threads * 2 : parseInteger('--shards', o.shards as string, 1);
    // The pool starts its threads now, while the edge list is read and grouped.
    const { nodes, values } = await withBackend(ctx, threads, 'nfd', async (b, l) => nfdOfGroups(groupBySource(await readEdges(path)), params, b, shards, l));
    if (o.json) {
      ctx.out(json({ nodes, values }));
      return;
    }
    const lines = nodes.map((n, i) => `${n}\t${values[i]}`);
    ctx.out(`# node\tnfd  (${nodes.length} source nodes of ${path}, threshold ${params.threshold}, decimals ${params.decimals})\n${lines.join('\n')}\n`);
  },
} satisfies CommandSpec;
