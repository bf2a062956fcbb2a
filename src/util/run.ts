// Run a short helper command (mount, umount, ldd, a runtime's `state`) and capture its output, never rejecting:
// callers decide what a non-zero exit means. A leaf module (node only), so executor, snapshot and store share it.
import { execFile } from "node:child_process";
import { errnoCode } from "./errno.js";

export interface QuietResult {
  /** Exit status; -1 when the command did not run or was killed by a signal. */
  code: number;
  stdout: string;
  stderr: string;
  /** Why the command did not start ("ENOENT": not installed), when it did not. */
  spawnError?: string;
}

export interface RunQuietOptions {
  /** Most output bytes kept per stream (default 16 MiB); more fails the command (code -1). */
  maxBuffer?: number;
  signal?: AbortSignal;
}

export function runQuiet(command: string, args: readonly string[], opts: RunQuietOptions = {}): Promise<QuietResult> {
  return new Promise((resolve) => {
    execFile(command, args, { maxBuffer: opts.maxBuffer ?? 16 * 1024 * 1024, ...(opts.signal ? { signal: opts.signal } : {}) }, (err, stdout, stderr) => {
      const status = (err as { code?: unknown } | null)?.code;
      const out: QuietResult = { code: err ? (typeof status === "number" ? status : -1) : 0, stdout: String(stdout), stderr: String(stderr) };
      // A spawn failure has a string errno code and no exit status.
      const spawnError = err && typeof status === "string" ? errnoCode(err) : undefined;
      if (spawnError) out.spawnError = spawnError;
      resolve(out);
    });
  });
}
