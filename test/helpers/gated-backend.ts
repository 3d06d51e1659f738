import type { ShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import { executeShard } from '../../worker/execute-shard.js';

/**
 * The in-process kernel behind a gate: every run() waits until open() — a pool that is slow
 * to start, or a shard that is still running when the test does something to its worker.
 * `started` counts the run() calls that reached the gate.
 */
export class GatedBackend implements ShardBackend {
  readonly name = 'gated';
  readonly concurrency = 1;
  started = 0;
  private release!: () => void;
  private gate = new Promise<void>((r) => (this.release = r));
  private arrivals: Array<() => void> = [];

  open(): void {
    this.release();
  }

  /** Closes the gate again for the runs that start from now on. */
  shut(): void {
    this.gate = new Promise<void>((r) => (this.release = r));
  }

  /** Resolves once `n` runs in total have reached the gate. */
  reached(n: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (this.started >= n ? resolve() : this.arrivals.push(check));
      check();
    });
  }

  async run(task: ShardTask): Promise<ShardResult> {
    this.started++;
    for (const f of this.arrivals.splice(0)) f();
    await this.gate;
    return executeShard(task);
  }

  async close(): Promise<void> {}
}
