import { UsageError } from '../../../proto/errors.js';

/** `hf://OWNER/NAME[@REVISION]`, parsed. */
export interface HubRef {
  owner: string;
  name: string;
  /** `OWNER/NAME`. */
  repo: string;
  /** A branch, tag or commit; `main` when omitted. */
  revision: string;
}

// The hub's own rules for repo ids: letters, digits, `-`, `_`, `.`; no `--` or `..`
// (huggingface_hub validate_repo_id). Anything else cannot be a repo and must not reach a URL.
const PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

export const isHubRef = (path: string) => path.startsWith('hf://');

export function parseHubRef(ref: string): HubRef {
  const bad = (why: string): never => {
    throw new UsageError(`${ref}: not a hub reference (${why}); expected hf://OWNER/NAME[@REVISION]`);
  };
  if (!isHubRef(ref)) bad('missing hf://');
  const rest = ref.slice('hf://'.length);
  const at = rest.indexOf('@');
  const id = at < 0 ? rest : rest.slice(0, at);
  const revision = at < 0 ? 'main' : rest.slice(at + 1);
  const parts = id.split('/');
  if (parts.length !== 2) bad('the repository must be OWNER/NAME');
  const [owner, name] = parts;
  for (const p of parts) if (!PART.test(p) || p.includes('--') || p.includes('..') || p.length > 96) bad(`invalid name ${JSON.stringify(p)}`);
  // Branch names may hold `/` (refs/pr/1); they travel percent-encoded. Control characters never.
  if (revision === '' || /[\s\x00-\x1f]/.test(revision) || revision.includes('..')) bad(`invalid revision ${JSON.stringify(revision)}`);
  return { owner, name, repo: `${owner}/${name}`, revision };
}

export const refLabel = (r: HubRef, revision = r.revision) => `hf://${r.repo}@${revision}`;
