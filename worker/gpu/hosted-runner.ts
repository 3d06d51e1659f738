import { BroadcastChannel, threadId } from 'node:worker_threads';
import { GpuKernelError, reasonOf } from './errors.js';
import type { BlockSums, BlockSumsCall, GpujsMode, KernelRunner } from './gpujs-runner.js';
import type { KernelProgram } from './program.js';

/**
 * The gpu.js modes whose device one thread of the process must own. Dawn's node binding (the
 * `webgpu` package) binds its JS classes to the first V8 isolate that loads it, in
 * process-wide statics: a second thread that opens a GPU aborts the whole process ("Entering
 * the V8 API without proper locking in place", GPU::Bind; H200, 2026-12-04). So the pool's
 * main thread hosts the one webgpu runner, and the threads send it their kernel calls. Only
 * the calls travel: layout, gating, chunking and the f64 fallback stay on each thread.
 */
export const HOSTED_MODES: readonly GpujsMode[] = ['webgpu'];

/** Call ids are unique per thread, across all of its runners: replies reach every runner on a channel. */
let nextCall = 0;

type ProgramData = Pick<KernelProgram, 'name' | 'cacheKey' | 'source' | 'constants'>;
interface CallMessage {
  kind: 'call';
  id: string;
  program: ProgramData;
  call: BlockSumsCall;
}
interface ReplyMessage {
  kind: 'reply';
  id: string;
  sums?: BlockSums;
  error?: string;
}

export interface RunnerHost {
  /** Kernel calls run so far (reports, tests). */
  readonly calls: number;
  /** Stops answering and closes the runner once the calls in flight are done. */
  close(): Promise<void>;
}

/**
 * Serves kernel calls for `mode` on this thread, over a BroadcastChannel named `channel`. The
 * runner opens on the first call; calls run one at a time, since a gpu.js kernel keeps its
 * output size between calls. A runner that fails to open fails every call, and each thread's
 * GpuPartitionSums then computes on f64 and says why.
 */
export function hostRunner(channel: string, mode: GpujsMode, open: (mode: GpujsMode) => Promise<KernelRunner>): RunnerHost {
  const port = new BroadcastChannel(channel);
  let runner: Promise<KernelRunner> | undefined;
  let queue: Promise<void> = Promise.resolve();
  let calls = 0;
  let closed = false;
  port.onmessage = (event) => {
    const msg = (event as { data: CallMessage | ReplyMessage }).data;
    if (msg.kind !== 'call') return;
    queue = queue.then(async () => {
      if (closed) return; // the pool is gone: nobody waits for this call
      let reply: ReplyMessage;
      try {
        runner ??= open(mode);
        reply = { kind: 'reply', id: msg.id, sums: await (await runner).blockSums(msg.program, msg.call) };
      } catch (err) {
        reply = { kind: 'reply', id: msg.id, error: reasonOf(err) };
      }
      calls++;
      if (!closed) port.postMessage(reply);
    });
  };
  return {
    get calls() {
      return calls;
    },
    async close() {
      closed = true;
      port.close();
      await queue;
      await (await runner?.catch(() => undefined))?.close();
    },
  };
}

/** A thread's runner for `mode` whose calls the host on `channel` computes. */
export function hostedRunner(channel: string, mode: GpujsMode, device: string): KernelRunner {
  const port = new BroadcastChannel(channel);
  const pending = new Map<string, { resolve: (sums: BlockSums) => void; reject: (err: Error) => void }>();
  let closed = false;
  port.onmessage = (event) => {
    const msg = (event as { data: CallMessage | ReplyMessage }).data;
    if (msg.kind !== 'reply') return; // a thread's call, for the host
    const waiter = pending.get(msg.id);
    if (!waiter) return; // another thread's reply
    pending.delete(msg.id);
    if (msg.error !== undefined) waiter.reject(new GpuKernelError(msg.error));
    else waiter.resolve(msg.sums!);
  };
  return {
    mode,
    device,
    blockSums(program: KernelProgram, call: BlockSumsCall): Promise<BlockSums> {
      if (closed) return Promise.reject(new GpuKernelError(`${mode} runner is closed`));
      const id = `${threadId}:${nextCall++}`;
      const { name, cacheKey, source, constants } = program;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        port.postMessage({ kind: 'call', id, program: { name, cacheKey, source, constants: { ...constants } }, call } satisfies CallMessage);
      });
    },
    async close() {
      closed = true;
      port.close();
      for (const waiter of pending.values()) waiter.reject(new GpuKernelError(`${mode} runner closed with calls in flight`));
      pending.clear();
    },
  };
}
