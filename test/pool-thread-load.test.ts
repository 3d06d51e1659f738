import test from 'ava';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

test("a pool thread's handler is the entry's run, handed to piscina only once the entry has loaded", async (t) => {
  // Piscina reports a thread ready when the handler settles, then blocks the thread's event loop
  // in Atomics.wait until a task comes: a handler given before the entry had loaded stalled it.
  const loader = require('../worker/pool/thread-load.cjs') as { default: unknown };
  t.true(loader.default instanceof Promise);
  const entry = await import('../worker/pool/thread-entry.js');
  t.is(await loader.default, entry.default);
});
