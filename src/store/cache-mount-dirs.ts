// The store's RUN --mount=type=cache directories: the private parent they live in, and the on-disk lock a build
// takes on one (`<dir>.lock`). Shared by the RUN mounts and by the cache-mount import/export of --cache-from/-to.
import { chmod, mkdir, open, readFile, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { AbortError, throwIfAborted } from "../errors.js";
import { storeLayout } from "./layout.js";
import { errnoCode } from "../util/errno.js";

const LOCK_POLL_MS = 100;

/** cache-mounts/ created if missing and kept 0700: a setuid file a build leaves in a cache mount must not be reachable by other local users. */
export async function ensureCacheMountsDir(storeRoot: string): Promise<string> {
  const base = storeLayout(storeRoot).cacheMountsDir;
  await mkdir(base, { recursive: true, mode: 0o700 });
  await chmod(base, 0o700);
  return base;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === "EPERM";
  }
}

/**
 * Takes `<dir>.lock` as an exclusive lock file holding our pid. Builds are separate processes (no daemon), so the
 * lock must live on disk; a lock whose owner died is taken over. `wait` false returns undefined instead of waiting.
 */
export async function lockCacheMount(dir: string, wait: boolean, signal: AbortSignal): Promise<(() => Promise<void>) | undefined> {
  const path = `${dir}.lock`;
  for (;;) {
    throwIfAborted(signal);
    try {
      const fh = await open(path, "wx", 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await rm(path, { force: true });
      };
    } catch (e) {
      if (errnoCode(e) !== "EEXIST") throw e;
    }
    const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
    // An empty file is a lock being written right now; only a dead, known owner makes a stale lock.
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && !pidAlive(owner)) {
      await rm(path, { force: true });
      continue;
    }
    if (!wait) return undefined;
    await sleep(LOCK_POLL_MS, undefined, { signal }).catch(() => {
      throw new AbortError();
    });
  }
}
