// Unpacked filesystems kept between builds, by cache key: <root>/snapshots/<key>/ holds exactly the layers of that
// step chain. A stage that must run a step mounts overlayfs over the snapshot instead of unpacking every layer again,
// so a changed rebuild pays only for the steps that really run. Snapshots are only ever read (as overlay lowerdirs);
// builds never delete them — prune does, under the store's exclusive lock.
import { mkdir, mkdtemp, rename, rm, stat, utimes } from "node:fs/promises";
import type { ContentStore } from "../store/types.js";
import { storeLayout } from "../store/layout.js";
import { extractStoredLayers } from "../layer/extract-stored.js";
import type { Digest } from "../image/types.js";
import { errnoCode } from "../util/errno.js";
import { idMapFingerprint } from "../util/user-namespace.js";
import { createHash } from "node:crypto";

/**
 * The snapshot's own key: the step chain's, and for a rootless build also its id mapping, since unpacked files carry
 * host ids and would show other owners (then copied up into a layer) under another mapping.
 */
export function mappedKey(key: string, fingerprint: string): string {
  return fingerprint === "" ? key : createHash("sha256").update(`${key}\n${fingerprint}`).digest("hex").slice(0, 32);
}

/**
 * The snapshot for `key`, unpacking `layers` into it first when it does not exist yet. Built in tmp/ and renamed
 * into place, so a snapshot that exists is always complete (a killed build leaves only tmp/ garbage).
 */
export async function ensureSnapshot(
  root: string,
  key: string,
  layers: readonly { diffId: Digest }[],
  content: ContentStore,
  signal: AbortSignal,
): Promise<string> {
  const dir = await keptDir(root, mappedKey(key, idMapFingerprint()), "snapshot", async (tmp) => {
    await extractStoredLayers(content, layers, tmp, signal);
    return true;
  });
  return dir as string;
}

export const isDir = async (p: string): Promise<boolean> => (await stat(p).catch(() => undefined))?.isDirectory() === true;

/** Records a kept directory's last use (its mtime), which prune --filter until= goes by. */
export async function markUsed(p: string): Promise<void> {
  const now = new Date();
  await utimes(p, now, now).catch(() => undefined);
}

/**
 * The kept directory snapshots/<name>/: when it does not exist, `fill` makes it in a fresh directory under tmp/,
 * which is renamed into place (so one that exists is complete); `fill` answering false keeps nothing (undefined).
 */
export async function keptDir(root: string, name: string, what: string, fill: (tmp: string) => Promise<boolean>): Promise<string | undefined> {
  const layout = storeLayout(root);
  const dest = layout.snapshot(name);
  if (await isDir(dest)) {
    await markUsed(dest);
    return dest;
  }
  await mkdir(layout.tmpDir, { recursive: true });
  await mkdir(layout.snapshotsDir, { recursive: true });
  const tmp = await mkdtemp(layout.tmpPrefix(`${what}-${process.pid}`));
  try {
    if (!(await fill(tmp))) {
      await rm(tmp, { recursive: true, force: true });
      return undefined;
    }
    try {
      await rename(tmp, dest);
    } catch (e) {
      // Another build made the same directory meanwhile: same name, same content; use theirs.
      const code = errnoCode(e);
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
      await rm(tmp, { recursive: true, force: true });
    }
    return dest;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}
