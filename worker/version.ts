import { readFileSync } from 'node:fs';

/** package.json's version, the one source; a light module, so the CLI need not load a worker to print it. */
export const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
