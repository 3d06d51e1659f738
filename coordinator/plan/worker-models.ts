import { isAbsolute, relative, resolve, sep } from 'node:path';
import { UsageError } from '../../proto/errors.js';
import type { ShardTask } from '../../proto/shard.js';
import { isHubRef, parseHubRef } from '../../worker/io/hub/ref.js';

/**
 * How the coordinator names a model to workers, defined once. A hub model becomes
 * `hf://OWNER/NAME@COMMIT` (the commit the coordinator resolved, so every worker reads the same
 * bytes). A local path is resolved against the coordinator's working directory; with
 * `--model-root DIR` it is sent relative to DIR, which the workers resolve against their own
 * `--model-root` (the same volume mounted on both sides, perhaps at different places);
 * without it the absolute path is sent, and workers must mount the models at the same place.
 */
export function workerModelRef(path: string, commit: string | undefined, modelRoot: string | undefined): string {
  if (isHubRef(path)) {
    if (!commit) throw new Error(`${path}: no commit resolved to pin it to`);
    return `hf://${parseHubRef(path).repo}@${commit}`;
  }
  const abs = resolve(path);
  if (modelRoot === undefined) return abs;
  const root = resolve(modelRoot);
  const rel = relative(root, abs);
  if (rel === '') return '.';
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new UsageError(`${path} is outside --model-root ${modelRoot}: workers read models under the root they share with the coordinator`);
  }
  return rel;
}

/** A full NIN's matrix shards with their local files named as workers resolve them; hub files are pinned already. */
export function forWorkers(tasks: ShardTask[], modelRoot: string | undefined): ShardTask[] {
  return tasks.map((t) => {
    if (t.measure !== 'mfa' || t.input.kind !== 'matrix') return t;
    const parts = t.input.parts.map((p) => (isHubRef(p.file) ? p : { ...p, file: workerModelRef(p.file, undefined, modelRoot) }));
    return { ...t, input: { ...t.input, parts } };
  });
}
