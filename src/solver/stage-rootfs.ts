// A stage's working rootfs, materialised lazily: cache hits only append layers to the stage's list, and the directory
// is brought up to date only when a step must really run or another stage reads it. When overlayfs is available the
// directory is an overlay over a kept snapshot of the layers so far (see snapshot/rootfs-snapshots.ts): no unpacking
// when the snapshot exists; otherwise the layers it lacks are extracted into it, or, when they are big, mounted as kept
// layer dirs over it (stackLayers).
import { chown, chmod, mkdir, rm, stat, utimes } from "node:fs/promises";
import type { ContentStore } from "../store/types.js";
import { extractStoredLayers } from "../layer/extract-stored.js";
import { ensureSnapshot } from "../snapshot/rootfs-snapshots.js";
import { ensureLayerDirs } from "../snapshot/layer-dirs.js";
import { lowerdirOption, mountOverlay, OverlayUnavailableError, unmount, type OverlayDirs } from "../snapshot/mounts.js";
import type { LayerRef } from "./stage-state.js";

export interface StageRootfs {
  readonly dir: string;
  /** How many of the stage's layers the directory holds. */
  applied: number;
  /** Serialises materialisation: several consumers may ask at once (COPY --from of a finished stage). */
  queue: Promise<unknown>;
  /** Set when `dir` is an overlay mount (unmounted by release()). */
  mounted: boolean;
  /** The overlay's dirs while mounted; its upper and work dirs sit beside `dir` (in the build's scratch dir). */
  overlay?: OverlayDirs;
  /** How many times the overlay was stacked anew (names the next upper and work dirs). */
  restacks: number;
}

/** Where kept snapshots live and whether overlay mounts are allowed for this build (shared by its stages). */
export interface SnapshotContext {
  root: string;
  /** False once a mount failed (or the user chose the copy snapshotter): plain extraction from then on. */
  enabled: boolean;
  /** Whether overlayfs was tried on this host yet (before unpacking a snapshot nobody could mount). */
  probed?: boolean;
}

export function stageRootfs(dir: string): StageRootfs {
  return { dir, applied: 0, queue: Promise.resolve(), mounted: false, restacks: 0 };
}

/** Brings `fs.dir` up to `layers` (which must extend what it already holds; `key` is their chain key) and returns its path. */
export function materialize(
  fs: StageRootfs,
  layers: readonly LayerRef[],
  key: string,
  content: ContentStore,
  snapshots: SnapshotContext,
  signal: AbortSignal,
): Promise<string> {
  const next = fs.queue.then(async () => {
    if (fs.applied === 0 && layers.length > 0 && snapshots.enabled && !fs.mounted) await mountSnapshot(fs, layers, key, content, snapshots, signal);
    const missing = layers.slice(fs.applied);
    if (fs.mounted && missing.reduce((n, l) => n + l.size, 0) >= STACK_MIN_BYTES && (await stackLayers(fs, missing, content, snapshots.root, signal)))
      return fs.dir;
    await mkdir(fs.dir, { recursive: true });
    await extractStoredLayers(content, layers.slice(fs.applied), fs.dir, signal, () => fs.applied++);
    return fs.dir;
  });
  // A failure is reported to this caller; later callers retry from where the directory stands.
  fs.queue = next.catch(() => undefined);
  return next;
}

/** One throwaway overlay mount next to `dir`: can this build use overlays at all? */
async function overlayUsable(dir: string): Promise<boolean> {
  const base = `${dir}.probe`;
  const d = { lower: `${base}/lower`, upper: `${base}/upper`, work: `${base}/work`, merged: `${base}/merged` };
  try {
    for (const p of [d.lower, d.upper, d.work, d.merged]) await mkdir(p, { recursive: true });
    await mountOverlay(d);
    await unmount(d.merged);
    return true;
  } catch (e) {
    if (e instanceof OverlayUnavailableError) return false;
    throw e;
  } finally {
    await rm(base, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function mountSnapshot(
  fs: StageRootfs,
  layers: readonly LayerRef[],
  key: string,
  content: ContentStore,
  snapshots: SnapshotContext,
  signal: AbortSignal,
): Promise<void> {
  if (!snapshots.probed) {
    snapshots.probed = true;
    snapshots.enabled = await overlayUsable(fs.dir);
    if (!snapshots.enabled) return;
  }
  const lower = await ensureSnapshot(snapshots.root, key, layers, content, signal);
  const d = { lower, upper: `${fs.dir}.upper`, work: `${fs.dir}.work`, merged: fs.dir };
  for (const p of [d.upper, d.work, d.merged]) await mkdir(p, { recursive: true });
  try {
    await mountOverlay(d);
  } catch (e) {
    if (!(e instanceof OverlayUnavailableError)) throw e;
    // No overlayfs here: unpack into the directory instead, for the rest of this build.
    snapshots.enabled = false;
    return;
  }
  fs.mounted = true;
  fs.overlay = d;
  fs.applied = layers.length;
}

/**
 * Layers this big that a mounted stage lacks are mounted, not unpacked through the overlay: each as its kept layer
 * dir (snapshot/layer-dirs.ts), stacked over the upper dir so far, under a fresh upper. Unpacking writes every file
 * once more into the upper dir, which the build then deletes; smaller layers cost less than the remount.
 */
export const STACK_MIN_BYTES = 1024 * 1024;

/** Most overlay options fit one page (mount(2)'s limit for them); past this, unpack instead. */
const MAX_LOWERDIR_OPTION = 3072;

/**
 * Remounts `fs.dir` with `layers` (the ones it lacks, in order) as kept layer dirs over what it holds. False, with
 * the mount as it was, when some layer cannot stand alone as a lowerdir or the stack would be too long.
 */
async function stackLayers(fs: StageRootfs, layers: readonly LayerRef[], content: ContentStore, root: string, signal: AbortSignal): Promise<boolean> {
  const old = fs.overlay;
  if (!old) return false;
  // Top first: the last layer's dirs, then the ones below it.
  const dirs: string[] = [];
  for (const l of layers) {
    const d = await ensureLayerDirs(root, l.diffId, content, signal, l.like);
    if (d === undefined) return false;
    dirs.unshift(...d);
  }
  const n = fs.restacks + 1;
  // The upper so far becomes a lower: it holds exactly the applied layers' changes, in overlayfs's own format.
  const next: OverlayDirs = {
    lower: dirs[0] as string,
    below: [...dirs.slice(1), old.upper, old.lower, ...(old.below ?? [])],
    upper: `${fs.dir}.upper${n}`,
    work: `${fs.dir}.work${n}`,
    merged: fs.dir,
  };
  if (lowerdirOption(next).length > MAX_LOWERDIR_OPTION) return false;
  // The merged root takes the upper root's owner, mode and times: keep the ones the stage's root has now.
  const rootSt = await stat(fs.dir);
  for (const p of [next.upper, next.work]) await mkdir(p, { recursive: true });
  await chown(next.upper, rootSt.uid, rootSt.gid);
  await chmod(next.upper, rootSt.mode & 0o7777);
  await utimes(next.upper, rootSt.atime, rootSt.mtime);
  await unmount(fs.dir);
  try {
    await mountOverlay(next);
  } catch (e) {
    // Put the stage back as it was; unpacking onto it then serves. If even that fails, the stage starts over from
    // a snapshot of its layers at the next step (its upper dirs hold nothing the layers do not).
    try {
      await mountOverlay(old);
    } catch {
      fs.mounted = false;
      delete fs.overlay;
      fs.applied = 0;
      throw e;
    }
    if (e instanceof OverlayUnavailableError) return false;
    throw e;
  }
  fs.overlay = next;
  fs.restacks = n;
  fs.applied += layers.length;
  return true;
}

/** Unmounts the stage's overlay, if any (the directories go with the build's scratch dir). */
export async function releaseStageRootfs(fs: StageRootfs): Promise<void> {
  await fs.queue;
  if (!fs.mounted) return;
  fs.mounted = false;
  await unmount(fs.dir);
}
