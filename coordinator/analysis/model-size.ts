import { openModel } from './model-analysis.js';

/** How big a model is, for comparing runs of several sizes (`compare`). */
export interface ModelSize {
  /** Weights of the layout's matrices: the edges of the full NIN (biases, norms, embeddings excluded). */
  layoutParameters: number;
  /** Every element of every tensor in the checkpoint (the number model names round, e.g. 160m). */
  checkpointParameters: number;
  hidden: number;
  blocks: number;
}

/** Reads only the headers (config and tensor table). */
export async function modelSize(path: string, layerSample: number): Promise<ModelSize> {
  const { ckpt, layout } = await openModel(path, layerSample);
  try {
    let checkpointParameters = 0;
    for (const t of ckpt.tensors.values()) checkpointParameters += t.shape.reduce((a, d) => a * d, 1);
    return { layoutParameters: layout.matrices.reduce((a, m) => a + m.inputs * m.outputs, 0), checkpointParameters, hidden: layout.hidden, blocks: layout.blocks.length };
  } finally {
    await ckpt.close();
  }
}
