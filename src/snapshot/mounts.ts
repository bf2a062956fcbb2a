// Mounting and unmounting through mount(8)/umount(8), and reading /proc/self/mountinfo to check nothing is left behind.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { EnvironmentError } from "../errors.js";

function run(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((res) => {
    execFile(cmd, args, (err, _stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
      res({ code, stderr: String(stderr).trim() });
    });
  });
}

/** Thrown when overlayfs cannot be mounted here (no kernel support, not root, unsupported fs); callers may fall back to copying. */
export class OverlayUnavailableError extends EnvironmentError {
  /** False when only these paths are the problem, so another RUN on the same filesystem may still use overlayfs. */
  hostWide = true;
}

export interface OverlayDirs {
  lower: string;
  upper: string;
  work: string;
  merged: string;
}

/** Options that keep the upperdir a plain, self-describing tree (no redirects, metadata-only copy-ups or index). */
const STRICT_OPTS = ["redirect_dir=off", "metacopy=off", "index=off"];

export async function mountOverlay(d: OverlayDirs): Promise<void> {
  for (const p of [d.lower, d.upper, d.work]) {
    // mount(8) splits options on "," and overlayfs splits lowerdir on ":".
    if (/[,:\\]/.test(p)) {
      const err = new OverlayUnavailableError("OVERLAY_UNAVAILABLE", `cannot use ${p} in overlay mount options (contains , : or \\)`);
      err.hostWide = false;
      throw err;
    }
  }
  const base = `lowerdir=${d.lower},upperdir=${d.upper},workdir=${d.work}`;
  let last = "";
  // Older kernels reject the strict options they do not know; their defaults are already off.
  for (const opts of [[base, ...STRICT_OPTS].join(","), base]) {
    const r = await run("mount", ["-t", "overlay", "overlay", "-o", opts, d.merged]);
    if (r.code === 0) return;
    last = r.stderr;
  }
  throw new OverlayUnavailableError("OVERLAY_UNAVAILABLE", `cannot mount overlayfs on ${d.merged}: ${last}`);
}

/** Unmounts `target`; if it is busy, detaches it lazily so the caller never leaves a mount behind. */
export async function unmount(target: string): Promise<void> {
  const r = await run("umount", [target]);
  if (r.code === 0) return;
  const lazy = await run("umount", ["-l", target]);
  if (lazy.code !== 0 && (await mountsUnder(target)).length > 0)
    throw new EnvironmentError("UMOUNT_FAILED", `cannot unmount ${target}: ${r.stderr}; ${lazy.stderr}`);
}

function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points at or below `dir` (from /proc/self/mountinfo). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const root = resolve(dir);
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const field = line.split(" ")[4];
    if (field === undefined) continue;
    const mp = unescapeMountPath(field);
    if (mp === root || mp.startsWith(`${root}/`)) out.push(mp);
  }
  return out;
}
