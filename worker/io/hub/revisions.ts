import { HubClient } from './client.js';
import { resolveHubOptions, type HubOptions } from './options.js';
import { parseHubRef } from './ref.js';

export interface BranchInfo {
  name: string;
  commit: string;
  /** N for a branch named step<N> (pythia's training checkpoints). */
  step?: number;
}

/**
 * The branches of a repository: `step<N>` branches first in numeric order (the order of a
 * training series: step1000 after step512), then the others (main) by name. The revision
 * part of `ref`, if any, is ignored.
 */
export async function listRevisions(ref: string, options: HubOptions = {}): Promise<BranchInfo[]> {
  const { repo } = parseHubRef(ref);
  const client = new HubClient(resolveHubOptions(options));
  const branches: BranchInfo[] = (await client.branches(repo)).map((b) => {
    const m = /^step(\d+)$/.exec(b.name);
    return m ? { ...b, step: Number(m[1]) } : b;
  });
  return branches.sort((a, b) =>
    a.step !== undefined && b.step !== undefined ? a.step - b.step : a.step !== undefined ? -1 : b.step !== undefined ? 1 : a.name.localeCompare(b.name),
  );
}
