import { toWireError } from '../../proto/errors.js';
import type { ShardReply, ShardTask } from '../../proto/shard.js';
import { executeShard } from '../execute-shard.js';

/** Piscina thread body: errors come back as data so their class survives the thread hop. */
export default async function run(task: ShardTask): Promise<ShardReply> {
  try {
    return { ok: true, result: await executeShard(task) };
  } catch (err) {
    return { ok: false, error: toWireError(err) };
  }
}
