import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { MockHub } from '../test/helpers/mock-hub.js';

/**
 * The mock hub in a process of its own, driven by JSON lines on stdin, so a benchmark's CLI
 * runs do not share a CPU queue with the server, and their peak RSS is their own (a child
 * forked from a process holding the checkpoint in memory inherits its RSS high-water mark).
 * `--host ADDR` listens there (default 127.0.0.1): a network namespace's address, so the hub
 * can be a host of its own (test/helpers/lan-cluster.ts). First line: {"hubUrl", "cdnUrl"}.
 *   {"add": [repo, dir, branch?]}   → {"ok": true} (branch default main)
 *   {"link": [latencyMs, bytesPerSec?]} → {"ok": true} (no rate: bodies are not paced)
 *   {"counters": true}              → {"requests": n, "bytes": n} (and resets every counter)
 *   {"log": true}                   → {"byClient": {addr: {"requests": n, "bytes": n}}} (since the last reset)
 */
const { values } = parseArgs({ options: { host: { type: 'string', default: '127.0.0.1' } } });
const hub = await MockHub.start(values.host);
const reply = (v: unknown) => process.stdout.write(JSON.stringify(v) + '\n');
reply({ hubUrl: hub.hubUrl, cdnUrl: hub.cdnUrl });
for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line) as { add?: [string, string, string?]; link?: [number, number?]; counters?: boolean; log?: boolean };
  if (cmd.add) await hub.addCommitFromDir(cmd.add[0], cmd.add[1], { branch: cmd.add[2] });
  if (cmd.link) [hub.latencyMs, hub.linkBytesPerSec] = [cmd.link[0], cmd.link[1] || undefined];
  if (cmd.counters) {
    reply({ requests: hub.log.length, bytes: hub.bytesServed.hub + hub.bytesServed.cdn });
    hub.resetCounters();
  } else if (cmd.log) {
    reply({ byClient: Object.fromEntries(hub.byClient) });
  } else {
    reply({ ok: true });
  }
}
await hub.stop();
