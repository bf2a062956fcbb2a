// Chroot-style path resolution inside a rootfs directory on the host: symlinks are resolved as the
// container would see them (absolute targets re-rooted) and `..` never climbs above the root.
import { lstat, readlink } from "node:fs/promises";
import path from "node:path";
import { BuildError } from "../errors.js";
import { errnoCode } from "../util/errno.js";

/** Linux's MAXSYMLINKS: more links than this in one resolution is a loop. */
const MAX_SYMLINKS = 40;

export interface ResolveInRootOptions {
  /** Resolve the last component too when it is a symlink (default true). */
  followLast?: boolean;
}

function splitPath(p: string): string[] {
  return p.split("/").filter((c) => c !== "" && c !== ".");
}

/**
 * Resolves container path `p` (absolute, or relative to the container's `/`) to a host path inside `root`.
 * Components that do not exist are kept lexically (they cannot be symlinks); the result need not exist.
 */
export async function resolveInRoot(root: string, p: string, opts: ResolveInRootOptions = {}): Promise<string> {
  const followLast = opts.followLast ?? true;
  const hostRoot = path.resolve(root);
  const resolved: string[] = [];
  let pending = splitPath(p);
  let links = 0;
  while (pending.length > 0) {
    const comp = pending[0] as string;
    pending = pending.slice(1);
    if (comp === "..") {
      // Climbing above `/` stays at `/`, as in the kernel's chroot.
      resolved.pop();
      continue;
    }
    if (pending.length === 0 && !followLast) {
      resolved.push(comp);
      break;
    }
    const candidate = path.join(hostRoot, ...resolved, comp);
    let isLink = false;
    try {
      isLink = (await lstat(candidate)).isSymbolicLink();
    } catch (e) {
      const code = errnoCode(e);
      if (code !== "ENOENT" && code !== "ENOTDIR") throw e;
    }
    if (!isLink) {
      resolved.push(comp);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new BuildError("SYMLINK_LOOP", `too many levels of symbolic links resolving ${JSON.stringify(p)} in the rootfs`);
    }
    const target = await readlink(candidate);
    if (target.startsWith("/")) resolved.length = 0;
    pending = [...splitPath(target), ...pending];
  }
  return path.join(hostRoot, ...resolved);
}

/** The container path (`/a/b`) of a host path inside `root`; the inverse of resolveInRoot for resolved paths. */
export function containerPathOf(root: string, hostPath: string): string {
  const rel = path.relative(path.resolve(root), hostPath);
  if (rel === ".." || rel.startsWith("../") || path.isAbsolute(rel)) {
    throw new BuildError("PATH_OUTSIDE_ROOT", `${hostPath} is outside the rootfs ${root}`);
  }
  return "/" + rel.split(path.sep).join("/");
}
