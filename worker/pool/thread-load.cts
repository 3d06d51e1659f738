// Piscina loads a thread's task file with require() first. Node 20's require() of an ES module
// can abort the whole process when it meets an import() of the same graph ("v8::Module::IsGraphAsync
// must be used on an instantiated module": a pool thread brought down `analyze --full` once in
// this suite), so threads load the ES entry through import() only, from the moment they start.
import type { ShardTask, ThreadReply } from '../../proto/shard.js';

const entry = import('./thread-entry.js');

async function run(task: ShardTask): Promise<ThreadReply> {
  return (await entry).default(task);
}

// Piscina awaits the handler before it reports the thread ready, and an idle ready thread
// blocks its event loop in Atomics.wait: a handler returned before the entry had loaded left
// that import stalled until the first task arrived (in `analyze`, ~300 ms after the thread
// started). A failure to load is reported by each task, through `run`.
export default entry.then(
  (m) => m.default,
  () => run,
);
