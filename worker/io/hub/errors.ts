import { InputError, TransportError } from '../../../proto/errors.js';

/**
 * One-line errors from a hub response that will not get better by retrying. The hub names
 * the failure in `X-Error-Code` (and explains it in `X-Error-Message`); 401 is also what
 * an unauthenticated client gets for a private repo, hence the token hint.
 */
export function hubError(res: Response, what: string, context: { repo: string; revision: string; file?: string }): Error {
  const code = res.headers.get('x-error-code');
  const detail = (res.headers.get('x-error-message') ?? '').replace(/\s+/g, ' ').trim();
  const tail = detail ? ` (${detail})` : '';
  switch (code) {
    case 'GatedRepo':
      return new InputError(`hf://${context.repo}: gated repository; accept its conditions on the hub and set HF_TOKEN to a token with access${tail}`);
    case 'RepoNotFound':
      return new InputError(`hf://${context.repo}: repository not found (private repositories need HF_TOKEN)${tail}`);
    case 'RevisionNotFound':
      return new InputError(`hf://${context.repo}@${context.revision}: revision not found${tail}`);
    case 'EntryNotFound':
      return new InputError(`hf://${context.repo}@${context.revision}: file ${context.file ?? '(unknown)'} not found${tail}`);
  }
  if (res.status === 401 || res.status === 403) return new InputError(`${what}: HTTP ${res.status}, access denied (set HF_TOKEN?)${tail}`);
  if (res.status === 404) return new InputError(`${what}: HTTP 404, not found${tail}`);
  if (res.status >= 400 && res.status < 500) return new InputError(`${what}: HTTP ${res.status}${tail}`);
  return new TransportError(`${what}: HTTP ${res.status}${tail}`);
}
