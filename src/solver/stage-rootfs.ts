// A stage's working rootfs, materialised lazily: cache hits only append layers to the stage's list, and the directory
// is brought up to date only when a step must really run or another stage reads it. When overlayfs is available the
// directory is an overlay over a kept snapshot of the layers so far (see snapshot/rootfs-snapshots.ts): no unpacking
// when the snapshot exists; otherwise the layers it lacks are extracted into it.
import { mkdir, rm } from "node:fs/promises";
import type { ContentStore } from "../store/types.js";
import { extractStoredLayers } from "../layer/extract-stored.js";
import { ensureSnapshot } from "../snapshot/rootfs-snapshots.js";
import { mountOverlay, OverlayUnavailableError, unmount } from "../snapshot/mounts.js";
import type { LayerRef } from "./stage-state.js";

export interface StageRootfs {
  readonly dir: string;
  /** How many of the stage's layers the directory holds. */
  applied: number;
  /** Serialises materialisation: several consumers may ask at once (COPY --from of a finished stage). */
  queue: Promise<unknown>;
  /** Set when `dir` is an overlay mount (unmounted by release()). */
  mounted: boolean;
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
  return { dir, applied: 0, queue: Promise.resolve(), mounted: false };
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
  fs.applied = layers.length;
}

/** Unmounts the stage's overlay, if any (the directories go with the build's scratch dir). */
export async function releaseStageRootfs(fs: StageRootfs): Promise<void> {
  await fs.queue;
  if (!fs.mounted) return;
  fs.mounted = false;
  await unmount(fs.dir);
}
