// Where the store lives by default: $TSBUILD_ROOT, else $XDG_DATA_HOME/tsbuild, else ~/.local/share/tsbuild.
import { chmod, mkdir, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env["TSBUILD_ROOT"]) return env["TSBUILD_ROOT"];
  if (env["XDG_DATA_HOME"]) return join(env["XDG_DATA_HOME"], "tsbuild");
  return join(env["HOME"] || homedir(), ".local", "share", "tsbuild");
}

/**
 * Creates the store root if needed and makes it private to its owner (0700): it holds build outputs, cache mounts
 * (where a build may leave setuid files), snapshots and, while a RUN runs, its secrets.
 */
export async function ensurePrivateRoot(root: string): Promise<void> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  const st = await stat(root);
  if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) await chmod(root, st.mode & 0o7700);
}
