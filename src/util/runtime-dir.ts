// Where runtime state lives (crun/runc --root, anything that must not outlive a boot): /run/tsbuild for real root;
// for a rootless build $XDG_RUNTIME_DIR/tsbuild, or /tmp/tsbuild-<uid> without one. Per host uid, so two users on one
// machine never share it; private (0700) and refused when someone else owns it.
import { lstatSync, type Stats } from "node:fs";
import { chmod, lstat, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EnvironmentError } from "../errors.js";
import { userNamespaceInfo, type UserNamespaceInfo } from "./user-namespace.js";

/** The runtime directory for this process (a pure choice; ensureRuntimeDir makes it). */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env, ns: UserNamespaceInfo = userNamespaceInfo()): string {
  if (!ns.rootless) return "/run/tsbuild";
  const xdg = env["XDG_RUNTIME_DIR"];
  if (xdg && xdg.startsWith("/") && ownedByUs(xdg)) return join(xdg, "tsbuild");
  return join(tmpdir(), `tsbuild-${ns.hostUid}`);
}

/** A directory (not a symlink) owned by this process's uid: the one test for a runtime dir we may use. */
function isOwn(st: Stats | undefined): boolean {
  return st !== undefined && st.isDirectory() && st.uid === process.getuid?.();
}

function ownedByUs(dir: string): boolean {
  try {
    return isOwn(lstatSync(dir));
  } catch {
    return false;
  }
}

/** Whether `dir` is a directory (not a symlink) owned by this process's uid: safe to keep or read runtime state in. */
export async function isOwnDir(dir: string): Promise<boolean> {
  return isOwn(await lstat(dir).catch(() => undefined));
}

/**
 * Creates `dir` (0700) if missing and checks it is ours: a directory, not a symlink, owned by this process's uid and
 * closed to others. /tmp is shared, so a /tmp/tsbuild-<uid> made by someone else must never be used.
 */
export async function ensureRuntimeDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (!isOwn(st)) {
    throw new EnvironmentError(
      "RUNTIME_STATE_DIR",
      `refusing runtime directory ${dir}: ${st.isDirectory() ? `owned by uid ${st.uid}, not you` : "not a directory"}`,
      {
        hint: `remove ${dir} (someone else made it), or set XDG_RUNTIME_DIR to a directory of your own`,
      },
    );
  }
  if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700);
}
