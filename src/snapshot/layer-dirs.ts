// One layer unpacked on its own, kept between builds by its diff_id: an overlay lowerdir that stacks on a stage's
// rootfs, so a big layer the stage lacks (a COPY of the context written straight into its tar, a cache hit after a
// step ran) is mounted instead of unpacked through the overlay into the build's upper dir, and a rebuild that makes
// the same layer again (an early change above an unchanged COPY) finds it unpacked. Like chain snapshots
// (rootfs-snapshots.ts) these are only ever read; prune removes them.
//
// Only a layer whose tar means the same on its own as on top of the layers below can be a lowerdir: no whiteouts
// (overlayfs spells them as 0:0 devices, not `.wh.` files), no hard link to a file of a lower layer, and every member's
// parent directory a member too (a `lib/x` whose `lib` is a symlink below goes through it when unpacked onto the
// rootfs, but a `lib/` directory of its own in a lowerdir would hide the link). Anything else returns undefined and
// the caller unpacks the layer onto the rootfs as before.
import { chmod } from "node:fs/promises";
import { createReadStream } from "node:fs";
import { posix } from "node:path";
import { createHash } from "node:crypto";
import { ArchiveError, throwIfAborted } from "../errors.js";
import type { Digest } from "../image/types.js";
import type { ContentStore } from "../store/types.js";
import { extractLayer } from "../layer/extract.js";
import type { LayerEntry } from "../layer/types.js";
import { idMapFingerprint } from "../util/user-namespace.js";
import { keptDir } from "./rootfs-snapshots.js";

/** Why a layer cannot stand alone as a lowerdir (thrown from the entry callback to stop unpacking early). */
class NotStandalone extends Error {}

/** The kept directory's name: the diff_id's, and the id mapping's for a rootless build (unpacked files carry host ids). */
export function layerDirKey(diffId: Digest, fingerprint: string): string {
  return createHash("sha256").update(`layer-dir\n${diffId}\n${fingerprint}`).digest("hex").slice(0, 32);
}

/** Throws NotStandalone at the first entry that would mean something else in a lowerdir than on the rootfs. */
export function standaloneCheck(): (e: LayerEntry) => void {
  const dirs = new Set<string>([""]);
  return (e) => {
    if (e.path === "") return; // the root itself
    const parent = posix.dirname(e.path);
    if (posix.basename(e.path).startsWith(".wh.")) throw new NotStandalone(`whiteout ${e.path}`);
    if (!dirs.has(parent === "." ? "" : parent)) throw new NotStandalone(`${e.path}: its parent is not in the layer`);
    if (e.type === "directory") dirs.add(e.path);
  };
}

/**
 * The kept lowerdir of the stored layer `diffId`, unpacked first when it does not exist yet. Undefined, with nothing
 * left behind, when the layer cannot stand alone (or is not in the store: the caller's unpacking reports that).
 */
export async function ensureLayerDir(root: string, diffId: Digest, content: ContentStore, signal: AbortSignal): Promise<string | undefined> {
  throwIfAborted(signal);
  if (!(await content.has(diffId))) return undefined;
  return keptDir(root, layerDirKey(diffId, idMapFingerprint()), "layer", async (tmp) => {
    // The root's own attributes never show through (the stage's upper dir has the merged root's); keep it usual.
    await chmod(tmp, 0o755);
    try {
      await extractLayer(createReadStream(content.path(diffId)), tmp, { signal, onEntry: standaloneCheck() });
      return true;
    } catch (e) {
      if (e instanceof NotStandalone || (e instanceof ArchiveError && e.code === "HARDLINK_TARGET_MISSING")) return false;
      throw e;
    }
  });
}
