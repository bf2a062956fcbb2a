// One RUN step over the stage's working rootfs: run the process on an overlay (or a copy) of it, and when it succeeds
// apply what changed onto the rootfs and return the new layer's entries. A failed or aborted RUN leaves rootfs untouched.
import { mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { mountStubsFor } from "../executor/hosts.js";
import type { Executor, ProcessIO, ProcessSpec } from "../executor/types.js";
import { BuildError } from "../errors.js";
import type { LayerEntry } from "../layer/types.js";
import { applyChanges, diffTrees, dropMountStubs, type Change } from "./diff.js";
import { OverlayUnavailableError } from "./mounts.js";
import { mountOverlayDirs, overlayChanges, prepareOverlayDirs } from "./overlay.js";
import { runQuiet } from "../util/run.js";

export type SnapshotterKind = "overlay" | "copy" | "auto";

export interface RunStepOptions {
  rootfs: string;
  /** An empty directory on the same filesystem as rootfs (files are renamed from it into rootfs). */
  scratch: string;
  executor: Executor;
  spec: ProcessSpec;
  io: ProcessIO;
  signal: AbortSignal;
  snapshotter?: SnapshotterKind;
  /** SOURCE_DATE_EPOCH: clamps entry mtimes. */
  epoch?: number;
}

export interface RunStepResult {
  exitCode: number;
  /** Empty when the RUN changed nothing (record an empty_layer) or failed. */
  entries: LayerEntry[];
  /** The snapshotter actually used. */
  snapshotter: "overlay" | "copy";
}

// Whether overlayfs works is a fact about the host and the scratch filesystem, so "auto" probes once per device
// (by attempting the real mount) instead of paying a failed mount on every RUN.
const overlayWorks = new Map<string, boolean>();

export async function runStep(opts: RunStepOptions): Promise<RunStepResult> {
  const kind = opts.snapshotter ?? "auto";
  if (kind === "copy") return runWithCopy(opts);
  if (kind === "overlay") return runWithOverlay(opts);
  const dev = String((await stat(opts.scratch)).dev);
  if (overlayWorks.get(dev) === false) return runWithCopy(opts);
  try {
    const r = await runWithOverlay(opts);
    overlayWorks.set(dev, true);
    return r;
  } catch (e) {
    if (!(e instanceof OverlayUnavailableError)) throw e;
    if (e.hostWide) overlayWorks.set(dev, false);
    return runWithCopy(opts);
  }
}

async function finish(opts: RunStepOptions, changes: Change[], snapshotter: "overlay" | "copy"): Promise<RunStepResult> {
  const kept = await dropMountStubs(changes, opts.rootfs, mountStubsFor(opts.spec));
  const entries = await applyChanges(opts.rootfs, kept, opts.epoch === undefined ? {} : { epoch: opts.epoch });
  return { exitCode: 0, entries, snapshotter };
}

async function runWithOverlay(opts: RunStepOptions): Promise<RunStepResult> {
  const dirs = await prepareOverlayDirs(opts.rootfs, opts.scratch);
  try {
    const release = await mountOverlayDirs(dirs);
    let exitCode: number;
    let changes: Change[] = [];
    try {
      ({ exitCode } = await opts.executor.run(opts.spec, dirs.merged, opts.io, opts.signal));
      // Opaque directories are recognised by comparing with the merged view, so read the upper before unmounting.
      if (exitCode === 0) changes = await overlayChanges(dirs);
    } finally {
      await release();
    }
    if (exitCode !== 0) return { exitCode, entries: [], snapshotter: "overlay" };
    return await finish(opts, changes, "overlay");
  } finally {
    await rm(dirs.upper, { recursive: true, force: true });
    await rm(dirs.work, { recursive: true, force: true });
    await rm(dirs.merged, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function cpArchive(from: string, to: string): Promise<void> {
  const r = await runQuiet("cp", ["-a", "--reflink=auto", from, to]);
  if (r.code !== 0) throw new BuildError("SNAPSHOT_COPY_FAILED", `cannot copy ${from} for RUN: ${r.stderr.trim() || r.spawnError || `cp exited with ${r.code}`}`);
}

async function runWithCopy(opts: RunStepOptions): Promise<RunStepResult> {
  await mkdir(opts.scratch, { recursive: true });
  const copy = join(opts.scratch, "copy");
  await rm(copy, { recursive: true, force: true });
  try {
    await cpArchive(opts.rootfs, copy);
    const { exitCode } = await opts.executor.run(opts.spec, copy, opts.io, opts.signal);
    if (exitCode !== 0) return { exitCode, entries: [], snapshotter: "copy" };
    return await finish(opts, await diffTrees(opts.rootfs, copy), "copy");
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}
