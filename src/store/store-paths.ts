// Where the store lives by default: $TSBUILD_ROOT, else $XDG_DATA_HOME/tsbuild, else ~/.local/share/tsbuild.
import { homedir } from "node:os";
import { join } from "node:path";

export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env["TSBUILD_ROOT"]) return env["TSBUILD_ROOT"];
  if (env["XDG_DATA_HOME"]) return join(env["XDG_DATA_HOME"], "tsbuild");
  return join(env["HOME"] || homedir(), ".local", "share", "tsbuild");
}
