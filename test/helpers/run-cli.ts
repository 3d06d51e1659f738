import { execFile } from 'node:child_process';
import { cliPath, repoRoot } from './shared.js';

export interface CliResult {
  /** The exit code; -1 if the process died of a signal. */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built CLI (`node bin/neuromfa.js ...args`) as a child process, without a shell,
 * and resolves with its exit code and output whatever the code (it never rejects for a
 * non-zero exit). Needs `tsc` to have run: the entry point imports dist/.
 */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [cliPath, ...args],
      {
        cwd: opts.cwd ?? repoRoot,
        env: { ...process.env, ...opts.env },
        maxBuffer: 256 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 100_000,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code !== 'number' && !(err as { killed?: boolean }).killed && (err as { signal?: unknown }).signal == null) {
          // The child could not be started at all (ENOENT, maxBuffer…): a harness failure.
          reject(err);
          return;
        }
        const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? ((err as unknown as { code: number }).code) : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
