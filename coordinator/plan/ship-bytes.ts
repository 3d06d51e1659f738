import type { ShardTask } from '../../proto/shard.js';
import type { ByteSource } from '../../worker/io/byte-source.js';
import { openSource } from '../../worker/io/open-source.js';
import { matrixBlocks, readBlock } from '../../worker/matrix-histogram.js';

/**
 * `--ship-bytes`: a matrix shard with the exact bytes it would read attached, block by block,
 * for workers that do not have the model on their filesystem.
 */
export async function withInlineBytes(task: ShardTask, open: (file: string) => Promise<ByteSource> = openSource): Promise<ShardTask> {
  if (task.measure !== 'mfa' || task.input.kind !== 'matrix') return task;
  const { parts, inputs, colStart, colEnd } = task.input;
  const sources = new Map<string, ByteSource>();
  try {
    const inline: Uint8Array[] = [];
    for (const b of matrixBlocks(parts, inputs, colStart, colEnd)) {
      const file = parts[b.part].file;
      let src = sources.get(file);
      if (!src) sources.set(file, (src = await open(file)));
      inline.push(await readBlock(src, b));
    }
    return { ...task, input: { ...task.input, inline } };
  } finally {
    for (const s of sources.values()) await s.close();
  }
}
