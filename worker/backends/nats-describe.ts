import { RequestStrategy, type NatsConnection } from 'nats';
import { decodeDescription } from '../../proto/codec.js';
import type { WorkerDescription } from '../../proto/describe.js';
import { describeSubject } from '../../proto/nats-chunks.js';

/**
 * Every worker on the subject that answers (describe is not queue-grouped): replies are
 * taken until none came for 150 ms, or `waitMs` passed without any. Core-NATS and JetStream
 * coordinators both count their workers this way.
 */
export async function describeWorkers(nc: NatsConnection, subject: string, waitMs = 500): Promise<WorkerDescription[]> {
  const out: WorkerDescription[] = [];
  try {
    const replies = await nc.requestMany(describeSubject(subject), new Uint8Array(0), { maxWait: waitMs, strategy: RequestStrategy.JitterTimer, jitter: 150 });
    for await (const m of replies) {
      try {
        out.push(decodeDescription(m.data));
      } catch {
        // Not a worker of this build (or not a worker at all): not counted.
      }
    }
  } catch (err) {
    // requestMany reports "no responders" as an error: no worker is there yet.
    if (!/503|no responders/i.test(String((err as Error).message ?? err))) throw err;
  }
  return out;
}
