/** The hub client's public surface: `hf://OWNER/NAME[@REV]` checkpoints read by byte range. */
export { openHubCheckpoint, openHubFile, describeRevision, type HubCheckpoint } from './open-hub-checkpoint.js';
export { listRevisions, type BranchInfo } from './revisions.js';
export { parseHubRef, isHubRef, type HubRef } from './ref.js';
export { resolveHubOptions, type HubOptions } from './options.js';
export type { HubStats } from './client.js';
export { HubCache } from './cache.js';
