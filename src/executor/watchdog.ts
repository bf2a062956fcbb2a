// A detached shell that waits on a pipe only tsbuild holds: if tsbuild dies (even by SIGKILL) the pipe closes and the
// shell runs the clean-up commands it was given (stop a container, kill a run cgroup); a step that ends normally
// disarms it. Deaf to Ctrl-C (tsbuild cleans up itself then) and in its own process group. A build keeps one such
// shell for all its RUNs (startWatchdogService, owned by the build's sandbox hooks).
import { spawn } from "node:child_process";
import { shellQuote } from "../util/command-shell.js";

export interface Watchdog {
  disarm(): void;
}

/** Starts the watchdog; `commands` run in order, their output discarded, only if tsbuild goes away first. */
export function startWatchdog(commands: readonly (readonly string[])[]): Watchdog {
  const script = `trap "" INT TERM HUP; if read -r line && [ "$line" = done ]; then exit 0; fi; ${commands.map((c) => `${shellQuote(c)} >/dev/null 2>&1`).join("; ")}`;
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

/** One build's watchdog: a single shell for all its RUNs, each RUN arming and disarming its own clean-up. */
export interface WatchdogService {
  /** Arms `commands` (as startWatchdog's) until the returned watchdog is disarmed. */
  arm(commands: readonly (readonly string[])[]): Watchdog;
  /** Ends the shell; what is still armed is forgotten (the build is over and cleaned up after itself). */
  close(): void;
}

// `+ID script` arms, `-ID` disarms, `done` ends; at EOF (tsbuild gone) every script still armed runs, in order.
const SERVICE_SCRIPT = [
  'trap "" INT TERM HUP; ids=',
  'while IFS= read -r line; do case $line in done) exit 0 ;; +*) id=${line%% *}; id=${id#+}; eval "c_$id=\\${line#* }"; ids="$ids $id" ;; -*) unset "c_${line#-}" ;; esac; done',
  'for id in $ids; do eval "c=\\${c_$id-}"; [ -n "$c" ] && eval "$c"; done',
].join("\n");

/**
 * A watchdog service: one detached shell per build instead of one per RUN (a process spawn less per RUN). Lines reach
 * the pipe as soon as write() returns (a pipe write below PIPE_BUF is atomic), so a RUN is covered once armed.
 */
export function startWatchdogService(): WatchdogService {
  let child: ReturnType<typeof spawn> | undefined;
  let next = 0;
  const send = (line: string) => {
    if (!child) {
      // Named for its owner in `ps`: a build's watchdog is told apart from another build's.
      child = spawn("sh", ["-c", SERVICE_SCRIPT, `tsbuild-watchdog-${process.pid}`], { stdio: ["pipe", "ignore", "ignore"], detached: true });
      child.on("error", () => undefined);
      child.stdin?.on("error", () => undefined);
      child.unref();
      // The pipe must not keep tsbuild alive; its closing at exit is what fires the armed commands.
      (child.stdin as unknown as { unref?(): void } | null)?.unref?.();
    }
    child.stdin?.write(`${line}\n`);
  };
  return {
    arm(commands) {
      const script = commands.map((c) => `${shellQuote(c)} >/dev/null 2>&1`).join("; ");
      // A newline would end the line early: such commands (never ours in practice) get a shell of their own.
      if (script.includes("\n")) return startWatchdog(commands);
      const id = (next++).toString(16);
      send(`+${id} ${script}`);
      let armed = true;
      return {
        disarm() {
          if (!armed) return;
          armed = false;
          send(`-${id}`);
        },
      };
    },
    close() {
      child?.stdin?.end("done\n");
      child = undefined;
    },
  };
}

/** Arms `commands` in the build's watchdog service, or in a watchdog of their own without one. */
export function armWatchdog(service: WatchdogService | undefined, commands: readonly (readonly string[])[]): Watchdog {
  return service ? service.arm(commands) : startWatchdog(commands);
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
