import { json, threadsFrom, withBackend, type CliContext } from '../context.js';
import { mfaParams, parseInteger } from '../flags.js';
import { formatSpectrum } from '../format.js';
import type { CommandOptions } from './common.js';

export async function run(ctx: CliContext, [path]: string[], o: CommandOptions): Promise<void> {
  const params = mfaParams(o as never);
  const threads = threadsFrom(o.threads as string | undefined);
  const shards = o.shards === undefined ? threads * 2 : parseInteger('--shards', o.shards as string, 1);
  // The pool starts its threads first: their start-up (~100 ms) is the longest wait of a run, so
  // the reader and the analysis load while they start. Shards start while the edge list is still being read.
  const { spectrum, stats } = await withBackend(
    ctx,
    threads,
    'mfa',
    async (b, l) => {
      const [{ withEdgeStream }, { mfaOfEdgeStream }] = await Promise.all([import('../read-edges.js'), import('../../analysis/edge-analysis.js')]);
      return withEdgeStream(path, (edges) => mfaOfEdgeStream(edges, params, b, shards, l));
    },
    { backend: o.backend },
  );
  const { q, tau, alpha, f, alpha0, width, nodesSelected, radii, fit } = spectrum;
  if (o.json) ctx.out(json({ q, tau, alpha, f, alpha0, width, nodesSelected, radii, fit, stats }));
  else ctx.out(formatSpectrum(path, spectrum, stats));
}
