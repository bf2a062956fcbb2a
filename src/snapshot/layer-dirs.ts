// One layer unpacked on its own, kept between builds by its diff_id: overlay lowerdirs that stack on a stage's rootfs,
// so a big layer the stage lacks (a COPY of the context written straight into its tar, a cache hit after a step ran)
// is mounted instead of unpacked through the overlay into the build's upper dir, and a rebuild that makes the same
// layer again (an early change above an unchanged COPY) finds it unpacked. A layer made in place of an earlier one
// (the same step after a late change: one file of thousands differs) is kept as a delta against the layer that the
// earlier one is unpacked whole as (itself, or the base of its own delta): only what differs is unpacked, over the
// shared whole dir, which is never changed. Like chain snapshots (rootfs-snapshots.ts) these are only ever read;
// prune removes them (a delta whose whole dir is gone is not used).
//
// Only a layer whose tar means the same on its own as on top of the layers below can be lowerdirs: no whiteouts
// (overlayfs spells them as 0:0 devices, not `.wh.` files), no hard link to a file of a lower layer, and every member's
// parent directory a member too (a `lib/x` whose `lib` is a symlink below goes through it when unpacked onto the
// rootfs, but a `lib/` directory of its own in a lowerdir would hide the link). Anything else returns undefined and
// the caller unpacks the layer onto the rootfs as before.
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { createReadStream } from "node:fs";
import { join, posix } from "node:path";
import { createHash } from "node:crypto";
import { ArchiveError, throwIfAborted } from "../errors.js";
import type { Digest } from "../image/types.js";
import type { ContentStore } from "../store/types.js";
import { storeLayout } from "../store/layout.js";
import { extractLayer } from "../layer/extract.js";
import { scanTarEntries, type ScannedEntry } from "../layer/tar-scan.js";
import { END_OF_ARCHIVE } from "../layer/tar-header.js";
import { Readable } from "node:stream";
import type { LayerEntry } from "../layer/types.js";
import { idMapFingerprint } from "../util/user-namespace.js";
import { isDir, keptDir, markUsed } from "./rootfs-snapshots.js";

/** Why a layer cannot stand alone as a lowerdir (thrown from the entry callback to stop unpacking early). */
class NotStandalone extends Error {}

/** A delta pays while it holds at most this share of the layer's entries. */
const MAX_DELTA_SHARE = 0.5;

/** The kept directory's name: the diff_id's, and the id mapping's for a rootless build (unpacked files carry host ids). */
export function layerDirKey(diffId: Digest, fingerprint: string, form: "whole" | "delta" = "whole"): string {
  return createHash("sha256")
    .update(`${form === "whole" ? "layer-dir" : "layer-delta"}\n${diffId}\n${fingerprint}`)
    .digest("hex")
    .slice(0, 32);
}

/** Throws NotStandalone at the first entry that would mean something else in a lowerdir than on the rootfs. */
export function standaloneCheck(): (e: Pick<LayerEntry, "path" | "type">) => void {
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
 * The kept lowerdirs of layer `diffId`, top first, when they exist, and the layer unpacked whole at their bottom:
 * its own whole dir, or its delta's fs/ over the whole dir of the layer the delta was made against (`base`).
 */
async function keptStack(root: string, diffId: Digest): Promise<{ dirs: string[]; base: Digest } | undefined> {
  const layout = storeLayout(root);
  const fp = idMapFingerprint();
  const whole = layout.snapshot(layerDirKey(diffId, fp));
  if (await isDir(whole)) {
    await markUsed(whole);
    return { dirs: [whole], base: diffId };
  }
  const delta = layout.snapshot(layerDirKey(diffId, fp, "delta"));
  const base = (await readFile(join(delta, "base"), "utf8").catch(() => "")).trim();
  if (!/^sha256:[0-9a-f]{64}$/.test(base)) return undefined;
  const dirs = [join(delta, "fs"), layout.snapshot(layerDirKey(base as Digest, fp))];
  for (const d of dirs) if (!(await isDir(d))) return undefined;
  for (const d of [delta, dirs[1] as string]) await markUsed(d);
  return { dirs, base: base as Digest };
}

/**
 * The paths of `diffId`'s entries that differ from `like`'s (with their parent directories, which the delta needs to
 * hold them), or undefined when a delta cannot say the same as the whole layer: an entry of `like` is gone (a delta
 * would need whiteouts), a hard link (its group may span both), the layer is not standalone, most entries differ, or
 * a tar holds headers the fast scan does not know. Entries compare by a digest of all their bytes in the tar.
 */
async function changedEntries(content: ContentStore, diffId: Digest, like: Digest): Promise<ScannedEntry[] | undefined> {
  const [was, now] = await Promise.all([scanTarEntries(content.path(like)), scanTarEntries(content.path(diffId))]);
  if (!was || !now) return undefined;
  const before = new Map<string, string>();
  for (const e of was) {
    if (e.type === "hardlink") return undefined;
    before.set(e.path, e.digest);
  }
  const check = standaloneCheck();
  const changed = new Set<string>();
  try {
    for (const e of now) {
      check(e);
      if (e.type === "hardlink") return undefined;
      const digest = before.get(e.path);
      before.delete(e.path);
      if (digest === e.digest) continue;
      for (let p = e.path; p !== "." && p !== "" && !changed.has(p); p = posix.dirname(p)) changed.add(p);
    }
  } catch (e) {
    if (e instanceof NotStandalone) return undefined;
    throw e;
  }
  if (before.size > 0 || changed.size > now.length * MAX_DELTA_SHARE) return undefined;
  // In the layer's order: parents come before what they hold.
  return now.filter((e) => changed.has(e.path));
}

/** A tar of just `entries` of the stored tar `file`, cut out by their byte ranges, with an end-of-archive marker. */
function excerpt(file: string, entries: readonly ScannedEntry[]): Readable {
  return Readable.from(
    (async function* () {
      for (const e of entries) if (e.length > 0) yield* createReadStream(file, { start: e.offset, end: e.offset + e.length - 1 });
      yield END_OF_ARCHIVE;
    })(),
  );
}

/**
 * The kept lowerdirs (top first) of the stored layer `diffId`, made first when they do not exist yet: as a delta over
 * the dirs of `like` (the layer the same step made before, when those are kept), else unpacked whole. Undefined, with
 * nothing left behind, when the layer cannot stand alone (or is not in the store: the caller's unpacking reports that).
 */
export async function ensureLayerDirs(root: string, diffId: Digest, content: ContentStore, signal: AbortSignal, like?: Digest): Promise<string[] | undefined> {
  throwIfAborted(signal);
  const kept = await keptStack(root, diffId);
  if (kept) return kept.dirs;
  if (!(await content.has(diffId))) return undefined;
  const fp = idMapFingerprint();
  // A delta is always against a layer unpacked whole (the bottom of `like`'s dirs), so stacks stay two dirs deep and
  // a series of late changes never unpacks whole again while the changes stay few.
  const base = like !== undefined && like !== diffId ? (await keptStack(root, like))?.base : undefined;
  if (base !== undefined && base !== diffId && (await content.has(base))) {
    const changed = await changedEntries(content, diffId, base);
    if (changed) {
      const dir = await keptDir(root, layerDirKey(diffId, fp, "delta"), "layer-delta", async (tmp) => {
        await mkdir(join(tmp, "fs"), { mode: 0o755 });
        const names: string[] = [];
        await extractLayer(excerpt(content.path(diffId), changed), join(tmp, "fs"), { signal, onEntry: (e) => void names.push(e.path) });
        // The scan and the extractor must agree on every name, or the delta would hold something else: then unpack whole.
        if (names.length !== changed.length || names.some((n, i) => n !== changed[i]?.path)) return false;
        await writeFile(join(tmp, "base"), `${base}\n`);
        return true;
      });
      // Resolved again: a build that made the same delta meanwhile may have made it against another base.
      const made = dir === undefined ? undefined : await keptStack(root, diffId);
      if (made) return made.dirs;
    }
  }
  const whole = await keptDir(root, layerDirKey(diffId, fp), "layer", async (tmp) => {
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
  return whole === undefined ? undefined : [whole];
}
