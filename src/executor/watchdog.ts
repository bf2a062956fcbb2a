// A detached shell that waits on a pipe only tsbuild holds: if tsbuild dies (even by SIGKILL) the pipe closes and the
// shell runs the clean-up commands it was given (stop a container, kill a run cgroup); a step that ends normally
// disarms it. Deaf to Ctrl-C (tsbuild cleans up itself then) and in its own process group.
import { spawn } from "node:child_process";

export interface Watchdog {
  disarm(): void;
}

const q = (a: readonly string[]) => a.map((x) => `'${x.replace(/'/g, "'\\''")}'`).join(" ");

/** Starts the watchdog; `commands` run in order, their output discarded, only if tsbuild goes away first. */
export function startWatchdog(commands: readonly (readonly string[])[]): Watchdog {
  const script = `trap "" INT TERM HUP; if read -r line && [ "$line" = done ]; then exit 0; fi; ${commands.map((c) => `${q(c)} >/dev/null 2>&1`).join("; ")}`;
  const child = spawn("sh", ["-c", script, "tsbuild-watchdog"], { stdio: ["pipe", "ignore", "ignore"], detached: true });
  child.on("error", () => undefined);
  child.stdin.on("error", () => undefined);
  child.unref();
  return {
    disarm() {
      child.stdin.end("done\n");
    },
  };
}

/**
 * The commands that kill everything in a run cgroup: freeze (v1 freezer) so nothing forks meanwhile, SIGKILL each
 * pid listed in the `cgroup.procs` files, thaw so the signals are delivered.
 */
export function killCgroupCommands(procsFiles: readonly string[]): string[][] {
  const freezer = procsFiles.find((f) => f.includes("/freezer/"))?.replace(/cgroup\.procs$/, "freezer.state");
  const kill = 'for f in "$@"; do for p in $(cat "$f"); do kill -9 "$p"; done; done';
  return [
    ...(freezer ? [["sh", "-c", 'echo FROZEN > "$0"', freezer]] : []),
    ["sh", "-c", kill, "kill-cgroup", ...procsFiles],
    ...(freezer ? [["sh", "-c", 'echo THAWED > "$0"', freezer]] : []),
  ];
}
