// Piscina hands its workerData to node's Worker: importing it from 'piscina' would load the
// whole pool library into every thread (~25 ms of each thread's start-up).
import { workerData } from 'node:worker_threads';
import { toWireError } from '../../proto/errors.js';
import type { BackendFallback, ShardTask, ThreadData, ThreadReply } from '../../proto/shard.js';
import { executeShard } from '../execute-shard.js';
import { F64, pickBackend, type PartitionBackend } from '../gpu/backends.js';
import { reasonOf } from '../gpu/errors.js';
import { hostedRunner } from '../gpu/hosted-runner.js';

const settings = workerData as ThreadData;
/**
 * The thread's partition-sum backend, opened on its first shard and kept: a GPU context or a
 * compiled kernel is worth reusing, and a device that failed stays off for this thread.
 */
let backend: Promise<PartitionBackend> | undefined;
/** Why this thread could not open the backend the main thread chose; told with its next shard. */
let openFailure: string | undefined;

/**
 * The main thread opened and self-tested the backend, but a thread can still fail to: a
 * native module that loads in one isolate only, a device taken meanwhile. Then this thread
 * computes on f64, as after a device failure mid-run, and says why once.
 */
async function openBackend(): Promise<PartitionBackend> {
  const host = settings.gpuHost;
  try {
    return await pickBackend(settings.partitionBackend, host ? { createRunner: async (mode) => hostedRunner(host.channel, mode, host.device) } : {});
  } catch (err) {
    openFailure = reasonOf(err);
    return F64;
  }
}

/** Piscina thread body: errors come back as data so their class survives the thread hop. */
export default async function run(task: ShardTask): Promise<ThreadReply> {
  let fallback: BackendFallback | undefined;
  try {
    backend ??= openBackend();
    const partitionBackend = await backend;
    if (openFailure !== undefined) {
      fallback = { shard: task.id, backend: settings.partitionBackend, reason: openFailure };
      openFailure = undefined;
    }
    const result = await executeShard(task, { partitionBackend, onFallback: (f) => (fallback = f) });
    return fallback ? { ok: true, result, fallback } : { ok: true, result };
  } catch (err) {
    return { ok: false, error: toWireError(err) };
  }
}
