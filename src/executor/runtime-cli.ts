// How tsbuild calls crun/runc outside a RUN: their state root, global flags, crun's hybrid-cgroup workaround, and
// housekeeping commands (kill, delete, list). Small and separate, so the orphan reaper every build runs loads no more.
import { readFile, statfs } from "node:fs/promises";
import { join } from "node:path";
import { runQuiet } from "../util/run.js";
import { runtimeDir } from "../util/runtime-dir.js";

/** The runtime's --root: /run/tsbuild/<runtime> for root, the user's own runtime directory for a rootless build. */
export function defaultStateDir(runtime: "crun" | "runc"): string {
  return join(runtimeDir(), runtime);
}
const TMPFS_MAGIC = 0x01021994;
const CGROUP2_MAGIC = 0x63677270;
/**
 * crun (≤1.8) refuses to start any container on a hybrid cgroup v1/v2 host whose v2 hierarchy has controllers.
 * On such hosts we start crun in a private mount namespace with an empty tmpfs over /sys/fs/cgroup/unified, so it
 * sees plain v1.
 */
export async function crunNeedsHybridWorkaround(): Promise<boolean> {
  try {
    const root = await statfs("/sys/fs/cgroup");
    if (root.type !== TMPFS_MAGIC) return false;
    const unified = await statfs("/sys/fs/cgroup/unified");
    if (unified.type !== CGROUP2_MAGIC) return false;
    return (await readFile("/sys/fs/cgroup/unified/cgroup.controllers", "utf8")).trim() !== "";
  } catch {
    return false;
  }
}
/** The runtime's global flags: its state root and, for crun, the cgroup manager (none when the host has no cgroups). */
export function runtimeBaseArgs(runtime: "crun" | "runc", stateDir: string, cgroups: boolean): string[] {
  if (runtime === "runc") return ["--root", stateDir];
  return ["--root", stateDir, `--cgroup-manager=${cgroups ? "cgroupfs" : "disabled"}`];
}
const UNIFIED = "/sys/fs/cgroup/unified";
/** A command line that runs `argv` with crun's hybrid-cgroup workaround when `wrap` is set. */
export function wrapped(wrap: boolean, argv: string[]): { command: string; args: string[] } {
  if (!wrap) return { command: argv[0] as string, args: argv.slice(1) };
  return {
    command: "unshare",
    // A fresh tmpfs, not an unmount: crun then treats the directory as one more v1 hierarchy and writes a run's
    // cgroup dir and cgroup.procs file into it. Unmounted, that was the host's /sys/fs/cgroup tmpfs beneath the
    // cgroup2 mount, where every RUN left them for good; a tmpfs of the namespace goes with it. (It also works in a
    // rootless build's user namespace, where the cgroup2 mount is locked and cannot be unmounted.)
    args: ["--mount", "--propagation", "private", "--", "sh", "-c", `mount -t tmpfs -o mode=755,size=1m tmpfs ${UNIFIED} && exec "$0" "$@"`, ...argv],
  };
}
export function wrappedArgv(wrap: boolean, argv: string[]): string[] {
  const c = wrapped(wrap, argv);
  return [c.command, ...c.args];
}
/** Runs a runtime housekeeping command (kill, delete, list) with crun's hybrid-cgroup workaround when `wrap` is set. */
export function runWrapped(wrap: boolean, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = wrapped(wrap, argv);
  return runQuiet(c.command, c.args);
}
/**
 * The status docker gives a process the runtime could not start (moby's translateContainerdStartErr): 127 when the
 * executable is missing, 126 when it cannot be executed. crun and runc both exit 1 then, with their error as the last
 * stderr line, e.g. "executable file `x` not found in $PATH" (crun), `exec: "x": permission denied` (runc).
 */
export function execFailureStatus(exitCode: number, stderrTail: string): number {
  if (exitCode !== 1) return exitCode;
  const last = stderrTail.trimEnd().split("\n").pop() ?? "";
  if (!/executable|exec: |exec failed|container process/.test(last)) return exitCode;
  if (/executable file (.* )?not found|no such file or directory/i.test(last)) return 127;
  if (/permission denied|exec format error/i.test(last)) return 126;
  return exitCode;
}
