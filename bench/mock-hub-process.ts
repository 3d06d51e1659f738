import { createInterface } from 'node:readline';
import { MockHub } from '../test/helpers/mock-hub.js';

/**
 * The mock hub in a process of its own, driven by JSON lines on stdin, so a benchmark's CLI
 * runs do not share a CPU queue with the server, and their peak RSS is their own (a child
 * forked from a process holding the checkpoint in memory inherits its RSS high-water mark).
 *   {"add": [repo, dir]}            → {"ok": true}
 *   {"link": [latencyMs, bytesPerSec]} → {"ok": true}
 *   {"counters": true}              → {"requests": n, "bytes": n} (and resets them)
 */
const hub = await MockHub.start();
const reply = (v: unknown) => process.stdout.write(JSON.stringify(v) + '\n');
reply({ hubUrl: hub.hubUrl });
for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line) as { add?: [string, string]; link?: [number, number]; counters?: boolean };
  if (cmd.add) await hub.addCommitFromDir(cmd.add[0], cmd.add[1]);
  if (cmd.link) [hub.latencyMs, hub.linkBytesPerSec] = cmd.link;
  if (cmd.counters) {
    reply({ requests: hub.log.length, bytes: hub.bytesServed.hub + hub.bytesServed.cdn });
    hub.resetCounters();
  } else {
    reply({ ok: true });
  }
}
await hub.stop();
