import type { Command } from 'commander';
import { mfaOfEdgeStream } from '../../analysis/edge-analysis.js';
import { json, threadsFrom, withBackend, type CliContext } from '../context.js';
import { mfaParams, parseInteger } from '../flags.js';
import { withEdgeStream } from '../read-edges.js';
import { addBackendFlag } from './analyze.js';
import { addAnalysisFlags, addRunFlags, type CommandSpec } from './common.js';
import { formatSpectrum } from '../format.js';

export const mfaCommand = {
  name: 'mfa',
  summary: 'multifractal spectrum of an edge list (.npy float64 (E,3) or CSV src,dst,weight)',
  configure(cmd: Command) {
    cmd.argument('<edges>', 'edge list: .npy float64 array of shape (E, 3) rows [src, dst, w], or .csv src,dst,weight');
    addAnalysisFlags(cmd);
    addBackendFlag(cmd, false);
    addRunFlags(cmd);
  },
  async run(ctx: CliContext, [path]: string[], o: Record<string, string | boolean | undefined>) {
    const params = mfaParams(o as never);
    const threads = threadsFrom(o.threads as string | undefined);
    const shards = o.shards === undefined ? threads * 2 : parseInteger('--shards', o.shards as string, 1);
    // The pool starts its threads now; shards start while the edge list is still being read.
    const { spectrum, stats } = await withBackend(ctx, threads, 'mfa', async (b, l) => withEdgeStream(path, (edges) => mfaOfEdgeStream(edges, params, b, shards, l)), { backend: o.backend });
    const { q, tau, alpha, f, alpha0, width, nodesSelected, radii, fit } = spectrum;
    if (o.json) ctx.out(json({ q, tau, alpha, f, alpha0, width, nodesSelected, radii, fit, stats }));
    else ctx.out(formatSpectrum(path, spectrum, stats));
  },
} satisfies CommandSpec;
