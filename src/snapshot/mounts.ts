// Mounting and unmounting through mount(8)/umount(8), and reading /proc/self/mountinfo to check nothing is left behind.
import { EnvironmentError } from "../errors.js";
import { mountsUnder } from "../util/mountinfo.js";
import type { CommandShell } from "../util/command-shell.js";
import { runQuiet } from "../util/run.js";
import { userNamespaceInfo } from "../util/user-namespace.js";

/** Runs mount(8)/umount(8) through `shell` when given (a cheaper fork than node's own), else directly. */
async function run(cmd: string, args: string[], shell?: CommandShell): Promise<{ code: number; stderr: string }> {
  if (shell) {
    const r = await shell.run(cmd, args);
    return { code: r.code, stderr: r.output.trim() };
  }
  const r = await runQuiet(cmd, args);
  return { code: r.code, stderr: r.stderr.trim() || (r.spawnError ? `${cmd}: ${r.spawnError}` : "") };
}

/** Thrown when overlayfs cannot be mounted here (no kernel support, not root, unsupported fs); callers may fall back to copying. */
export class OverlayUnavailableError extends EnvironmentError {
  /** False when only these paths are the problem, so another RUN on the same filesystem may still use overlayfs. */
  hostWide = true;
}

export interface OverlayDirs {
  lower: string;
  /** More lower dirs under `lower`, top first (a stage rootfs stacked on kept layer dirs and earlier upper dirs). */
  below?: readonly string[];
  upper: string;
  work: string;
  merged: string;
}

/** Options that keep the upperdir a plain, self-describing tree (no redirects, metadata-only copy-ups or index). */
const STRICT_OPTS = ["redirect_dir=off", "metacopy=off", "index=off"];

/** mount(8) splits options on "," and overlayfs splits lowerdir on ":": paths with them cannot be given. */
function refuseOptionPaths(d: OverlayDirs, what: string): void {
  for (const p of [d.lower, ...(d.below ?? []), d.upper, d.work]) {
    if (/[,:\\]/.test(p)) {
      const err = new OverlayUnavailableError("OVERLAY_UNAVAILABLE", `cannot use ${p} in ${what} options (contains , : or \\)`);
      err.hostWide = false;
      throw err;
    }
  }
}

/** overlayfs's lowerdir value: the lower dirs, top first, joined by ":". */
export function lowerdirOption(d: OverlayDirs): string {
  return [d.lower, ...(d.below ?? [])].join(":");
}

export async function mountOverlay(d: OverlayDirs, shell?: CommandShell): Promise<void> {
  refuseOptionPaths(d, "overlay mount");
  // In a user namespace overlayfs cannot write trusted.* xattrs (an opaque directory would fail with EIO): userxattr
  // keeps them as user.overlay.* (kernel 5.11+, the same that allows the mount at all).
  const base = `lowerdir=${lowerdirOption(d)},upperdir=${d.upper},workdir=${d.work}${userNamespaceInfo().rootless ? ",userxattr" : ""}`;
  let last = "";
  // Older kernels reject the strict options they do not know; their defaults are already off.
  for (const opts of [[base, ...STRICT_OPTS].join(","), base]) {
    const r = await run("mount", ["-t", "overlay", "overlay", "-o", opts, d.merged], shell);
    if (r.code === 0) return;
    last = r.stderr;
  }
  throw new OverlayUnavailableError("OVERLAY_UNAVAILABLE", `cannot mount overlayfs on ${d.merged}: ${last}`);
}

/**
 * The same overlay through fuse-overlayfs (Debian fuse-overlayfs), for a rootless build whose kernel refuses overlayfs
 * in a user namespace (before 5.11). allow_other: RUN's processes run as other ids than the mount's owner.
 */
export async function mountFuseOverlay(d: OverlayDirs): Promise<void> {
  refuseOptionPaths(d, "fuse-overlayfs");
  const r = await run("fuse-overlayfs", ["-o", `lowerdir=${lowerdirOption(d)},upperdir=${d.upper},workdir=${d.work},allow_other`, d.merged]);
  if (r.code === 0) return;
  const missing = r.stderr === "fuse-overlayfs: ENOENT";
  throw new OverlayUnavailableError(
    "OVERLAY_UNAVAILABLE",
    missing ? "fuse-overlayfs is not installed: apt-get install -y fuse-overlayfs" : `cannot mount fuse-overlayfs on ${d.merged}: ${r.stderr}`,
    { hint: "apt-get install -y fuse-overlayfs, check /dev/fuse is usable, or use --snapshotter copy; `tsbuild doctor` checks both" },
  );
}

/** Unmounts `target`; if it is busy, detaches it lazily so the caller never leaves a mount behind. */
export async function unmount(target: string, shell?: CommandShell): Promise<void> {
  const r = await run("umount", [target], shell);
  if (r.code === 0) return;
  const lazy = await run("umount", ["-l", target], shell);
  if (lazy.code !== 0 && (await mountsUnder(target)).length > 0)
    throw new EnvironmentError("UMOUNT_FAILED", `cannot unmount ${target}: ${r.stderr}; ${lazy.stderr}`);
}

/** Mount points at or below `dir`, deepest first (the shared mountinfo parser's answer). */
export { mountsUnder };
