// Piscina hands its workerData to node's Worker: importing it from 'piscina' would load the
// whole pool library into every thread (~25 ms of each thread's start-up).
import { workerData } from 'node:worker_threads';
import { toWireError } from '../../proto/errors.js';
import type { BackendFallback, ShardTask, ThreadData, ThreadReply } from '../../proto/shard.js';
import { executeShard } from '../execute-shard.js';
import { pickBackend, type PartitionBackend } from '../gpu/backends.js';
import { hostedRunner } from '../gpu/hosted-runner.js';

const settings = workerData as ThreadData;
/**
 * The thread's partition-sum backend, opened on its first shard and kept: a GPU context or a
 * compiled kernel is worth reusing, and a device that failed stays off for this thread.
 */
let backend: Promise<PartitionBackend> | undefined;

/** Piscina thread body: errors come back as data so their class survives the thread hop. */
export default async function run(task: ShardTask): Promise<ThreadReply> {
  let fallback: BackendFallback | undefined;
  try {
    const host = settings.gpuHost;
    backend ??= pickBackend(settings.partitionBackend, host ? { createRunner: async (mode) => hostedRunner(host.channel, mode, host.device) } : {});
    const result = await executeShard(task, { partitionBackend: await backend, onFallback: (f) => (fallback = f) });
    return fallback ? { ok: true, result, fallback } : { ok: true, result };
  } catch (err) {
    return { ok: false, error: toWireError(err) };
  }
}
