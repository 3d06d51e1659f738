import { UsageError } from '../../../proto/errors.js';
import { writeNpyEdges } from '../../../worker/io/npy.js';
import { modelEdgeLists } from '../../analysis/model-analysis.js';
import { planRecord } from '../../../worker/nin/sample-plan.js';
import { json, type CliContext } from '../context.js';
import { parseInteger } from '../flags.js';
import type { CommandOptions } from './common.js';
import { checkOutputFile } from '../../../worker/io/atomic-write.js';

export async function run(ctx: CliContext, [model]: string[], o: CommandOptions): Promise<void> {
  const sample = parseInteger('--sample', o.sample as string, 0, 0xffffffff);
  const k = parseInteger('--layer-sample', o.layerSample as string, 1);
  const out = o.out as string;
  if (!out.endsWith('.npy')) throw new UsageError(`--out must name a .npy file, got "${out}"`);
  await checkOutputFile(out);
  const { layout, plans, edges } = await modelEdgeLists(model, [sample], k);
  await writeNpyEdges(out, edges[0]);
  if (o.plan) ctx.out(json({ layout: layout.name, sample, layerSample: k, edges: edges[0].length / 3, plan: planRecord(plans[0]) }));
  else ctx.out(`wrote ${edges[0].length / 3} edges of sample ${sample} (${layout.name} layout, layer sample ${k}) to ${out}\n`);
}
