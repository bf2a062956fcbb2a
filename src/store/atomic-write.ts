// Atomic file replacement for the store: write a temp file on the same filesystem, fsync, rename, fsync the directory.
// A reader (or a crash) sees either the old file or the new one, never a partial write.
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** A fresh, unique temp file name in `dir` (pid + random, so concurrent processes and calls never collide). */
export function tempPath(dir: string, prefix = ".tmp"): string {
  return join(dir, `${prefix}-${process.pid}-${randomBytes(8).toString("hex")}`);
}

/** fsync a directory so a rename inside it survives a crash; best effort (some filesystems refuse to open/sync dirs). */
export async function fsyncDir(dir: string): Promise<void> {
  try {
    const h = await open(dir, "r");
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // Not fatal: the data itself is already synced, only the rename's durability is at stake.
  }
}

export interface AtomicWriteOptions {
  /** Directory for the temp file; must be on the same filesystem as `path`. Defaults to the target's directory. */
  tmpDir?: string;
  /** File mode of the new file (before umask). */
  mode?: number;
  /**
   * fsync the directory after the rename (default true). False where losing the rename in a crash is harmless
   * because the old file says the same (a re-tag that only moves the tag time): saves a journal commit.
   */
  syncDir?: boolean;
}

/** Replace `path` atomically with `data`, creating parent directories as needed. */
export async function writeFileAtomic(path: string, data: Uint8Array | string, opts: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const tmpDir = opts.tmpDir ?? dir;
  await mkdir(dir, { recursive: true });
  if (tmpDir !== dir) await mkdir(tmpDir, { recursive: true });
  const tmp = tempPath(tmpDir, `.${basename(path)}.tmp`);
  try {
    const h = await open(tmp, "wx", opts.mode ?? 0o644);
    try {
      await h.writeFile(data);
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  if (opts.syncDir !== false) await fsyncDir(dir);
}
