import type { ShardResult, ShardTask } from '../../proto/shard.js';
import { executeShard, type ExecuteOptions } from '../execute-shard.js';
import type { ShardBackend } from './shard-backend.js';

/** Runs shards on the calling thread: the reference path for tests and tiny inputs. */
export class InProcessBackend implements ShardBackend {
  readonly name = 'in-process';
  readonly concurrency = 1;
  constructor(private readonly options: ExecuteOptions = {}) {}
  run(task: ShardTask): Promise<ShardResult> {
    return executeShard(task, this.options);
  }
  async close(): Promise<void> {}
}
