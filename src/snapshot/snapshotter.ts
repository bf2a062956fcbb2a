// Snapshotters: a writable view over a stage's rootfs for one RUN, and the exact changes made through it.
// overlay mounts rootfs as the lower dir; fuse-overlayfs does the same where a user namespace may not mount overlayfs;
// copy works on a reflinked copy where neither mounts; auto tries them in that order once per filesystem and remembers
// the answer in the snapshotter itself (one per engine, no module state).
import { execFile } from "node:child_process";
import { mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { BuildError } from "../errors.js";
import { diffTrees, type Change } from "./diff.js";
import { OverlayUnavailableError } from "./mounts.js";
import { mountOverlayDirs, overlayChanges, prepareOverlayDirs, type OverlayDriver } from "./overlay.js";
import { findOnPath } from "../executor/select-executor.js";
import { runQuiet } from "../util/run.js";
import { commandShell, type CommandShell } from "../util/command-shell.js";

export type SnapshotterKind = "overlay" | "fuse-overlayfs" | "copy" | "auto";
export const SNAPSHOTTER_KINDS: readonly SnapshotterKind[] = ["auto", "overlay", "fuse-overlayfs", "copy"];

/**
 * One prepared view. changes() reads what the process changed and closes the view (an overlay is unmounted, so the
 * rootfs under it may be written); the changed files stay readable at each change's `from` until release().
 */
export interface Snapshot {
  /** The directory the sandbox uses as its root. */
  readonly path: string;
  readonly kind: Exclude<SnapshotterKind, "auto">;
  changes(): Promise<Change[]>;
  /** Removes everything the snapshot made; safe to call more than once, and without changes(). */
  release(): Promise<void>;
}

export interface Snapshotter {
  readonly kind: SnapshotterKind;
  /** A writable view of `rootfs`, built in `scratch` (an empty dir on the same filesystem as rootfs). */
  prepare(rootfs: string, scratch: string): Promise<Snapshot>;
  /** What auto chose and why (for --debug); undefined before the first prepare(). */
  chosen(): string | undefined;
}

async function overlaySnapshot(rootfs: string, scratch: string, driver: OverlayDriver = "kernel", shell?: CommandShell): Promise<Snapshot> {
  const dirs = await prepareOverlayDirs(rootfs, scratch);
  // The three are independent: removed side by side, each RUN's release waits for the slowest only.
  const cleanup = async () => {
    await Promise.all([
      rm(dirs.upper, { recursive: true, force: true }),
      rm(dirs.work, { recursive: true, force: true }),
      rm(dirs.merged, { recursive: true, force: true }).catch(() => undefined),
    ]);
  };
  let unmount: () => Promise<void>;
  try {
    unmount = await mountOverlayDirs(dirs, driver, shell);
  } catch (e) {
    await cleanup();
    throw e;
  }
  let mounted = true;
  const detach = async () => {
    if (!mounted) return;
    mounted = false;
    await unmount();
  };
  return {
    path: dirs.merged,
    kind: driver === "fuse" ? "fuse-overlayfs" : "overlay",
    async changes() {
      // Opaque directories are recognised by comparing with the merged view: read while still mounted.
      try {
        return await overlayChanges(dirs);
      } finally {
        await detach();
      }
    },
    async release() {
      try {
        await detach();
      } finally {
        await cleanup();
      }
    },
  };
}

function cpArchive(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("cp", ["-a", "--reflink=auto", from, to], (err, _o, stderr) =>
      err ? reject(new BuildError("SNAPSHOT_COPY_FAILED", `cannot copy ${from} for RUN: ${String(stderr).trim() || err.message}`, { cause: err })) : resolve(),
    );
  });
}

async function copySnapshot(rootfs: string, scratch: string): Promise<Snapshot> {
  await mkdir(scratch, { recursive: true });
  const copy = join(scratch, "copy");
  await rm(copy, { recursive: true, force: true });
  try {
    await cpArchive(rootfs, copy);
  } catch (e) {
    await rm(copy, { recursive: true, force: true });
    throw e;
  }
  return {
    path: copy,
    kind: "copy",
    changes: () => diffTrees(rootfs, copy),
    release: () => rm(copy, { recursive: true, force: true }),
  };
}

/**
 * A snapshotter of `kind`. "auto" tries overlayfs, then fuse-overlayfs (when installed), then copies; a kind that
 * fails host-wide is not tried again on that filesystem.
 */
export function createSnapshotter(kind: SnapshotterKind = "auto"): Snapshotter {
  // Whether a mount works is a fact about the host and the scratch filesystem: probed once per device.
  const broken = new Map<string, Set<string>>();
  let chosen: string | undefined;
  const fuseInstalled = findOnPath("fuse-overlayfs").then((p) => p !== undefined);
  const choose = (k: string, why: string) => (chosen ??= `${k}${why ? ` (${why})` : ""}`);
  // Each RUN mounts and unmounts: through one small shell rather than two forks of node per RUN.
  const shell = commandShell();
  return {
    kind,
    chosen: () => chosen,
    async prepare(rootfs, scratch) {
      if (kind !== "auto") {
        choose(kind, "forced");
        if (kind === "copy") return copySnapshot(rootfs, scratch);
        return overlaySnapshot(rootfs, scratch, kind === "fuse-overlayfs" ? "fuse" : "kernel", shell);
      }
      await mkdir(scratch, { recursive: true });
      const dev = String((await stat(scratch)).dev);
      const no = broken.get(dev) ?? new Set<string>();
      broken.set(dev, no);
      const reasons: string[] = [];
      for (const driver of ["kernel", "fuse"] as const) {
        if (no.has(driver) || (driver === "fuse" && !(await fuseInstalled))) continue;
        try {
          const s = await overlaySnapshot(rootfs, scratch, driver, shell);
          choose(s.kind, reasons.join("; "));
          return s;
        } catch (e) {
          if (!(e instanceof OverlayUnavailableError)) throw e;
          if (e.hostWide) no.add(driver);
          reasons.push(e.message);
        }
      }
      choose("copy", reasons.join("; ") || "overlayfs unusable here");
      return copySnapshot(rootfs, scratch);
    },
  };
}

export type ProbeResult = { ok: true } | { ok: false; reason: string };

/**
 * Whether the overlay snapshotter works in `scratch` (an empty, private dir on the store's filesystem): the same
 * mount a RUN makes, over an empty lower dir, undone at once. `tsbuild doctor` asks this; "auto" learns it per RUN.
 */
export async function probeOverlay(scratch: string): Promise<ProbeResult> {
  const lower = join(scratch, "lower");
  await mkdir(lower, { recursive: true });
  try {
    const snap = await overlaySnapshot(lower, join(scratch, "snap"));
    await snap.release();
    return { ok: true };
  } catch (e) {
    if (e instanceof OverlayUnavailableError) return { ok: false, reason: e.message };
    throw e;
  } finally {
    await rm(lower, { recursive: true, force: true });
  }
}

/**
 * Whether overlayfs mounts inside a new user namespace (kernel 5.11+, not blocked by policy), as a rootless RUN would
 * mount it: `unshare -r -m` and mount(8) in `scratch`.
 */
export async function probeUsernsOverlay(scratch: string): Promise<ProbeResult> {
  const d = { lower: join(scratch, "lower"), upper: join(scratch, "upper"), work: join(scratch, "work"), merged: join(scratch, "merged") };
  if (/[,:\\]/.test(scratch)) return { ok: false, reason: `cannot use ${scratch} in overlay mount options (contains , : or \\)` };
  for (const p of Object.values(d)) await mkdir(p, { recursive: true });
  const script = 'mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" && umount "$4"';
  const r = await runQuiet("unshare", ["-r", "-m", "sh", "-c", script, "sh", d.lower, d.upper, d.work, d.merged]);
  if (r.code === 0) return { ok: true };
  return { ok: false, reason: r.stderr.trim().split("\n").pop() || (r.spawnError ? `unshare: ${r.spawnError}` : `exit ${r.code}`) };
}
