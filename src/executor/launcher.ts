// Starts a RUN's runtime (crun/runc) from a small resident shell instead of forking node, which costs milliseconds
// of CPU at a build's memory size. Each shell runs one command at a time: its stdout and stderr are that command's, a
// marker on each says the command's output is complete, and fd 3 carries its exit status. A RUN takes an idle shell
// or starts one; an idle shell ends after a while, and when tsbuild exits (the command pipe closes).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { holdProcess, shellQuote } from "../util/command-shell.js";

export interface LaunchIO {
  stdout(chunk: Uint8Array): void;
  stderr(chunk: Uint8Array): void;
}

export interface SandboxLauncher {
  /** Runs argv with stdin /dev/null and the output streamed to `io`; resolves with its status (128+n: signal n). */
  run(argv: readonly string[], io: LaunchIO): Promise<number>;
}

const IDLE_MS = 2000;

// The command gets neither our command pipe (stdin) nor the status pipe (fd 3). The traps are no-ops, not "ignore":
// the command (whose signal dispositions exec resets) still gets a terminal's Ctrl-C as it did when node started it,
// and the shell outlives the signal to report the command's status.
const SCRIPT =
  'trap : INT TERM HUP; m=$1; while IFS= read -r line; do eval "$line" </dev/null 3>&-; rc=$?; printf %s "$m"; printf %s "$m" >&2; echo "$rc" >&3; done';

interface Shell {
  proc: ChildProcess;
  marker: Buffer;
  /** The command in flight: its output handlers and completion. */
  current?: Job;
}

interface Job {
  io: LaunchIO;
  /** Output streams whose marker has not arrived yet. */
  open: number;
  status?: number;
  resolve(code: number): void;
  reject(e: Error): void;
}

/**
 * Output up to the marker goes to `emit`; bytes that may begin the marker are held back until the next chunk shows
 * they do not. Returns true once the marker was seen.
 */
function markerFilter(marker: Buffer, emit: (chunk: Uint8Array) => void): (chunk: Buffer) => boolean {
  let held = Buffer.alloc(0);
  return (chunk) => {
    const buf = held.length ? Buffer.concat([held, chunk]) : chunk;
    held = Buffer.alloc(0);
    const at = buf.indexOf(marker);
    if (at >= 0) {
      if (at > 0) emit(buf.subarray(0, at));
      return true;
    }
    // Only a tail that starts like the marker (its first byte, 0x1e, is rare in output) is held back.
    let keep = buf.length;
    for (let i = Math.max(0, buf.length - marker.length + 1); i < buf.length; i++) {
      if (marker.subarray(0, buf.length - i).equals(buf.subarray(i))) {
        keep = i;
        break;
      }
    }
    if (keep > 0) emit(buf.subarray(0, keep));
    held = Buffer.from(buf.subarray(keep));
    return false;
  };
}

export function sandboxLauncher(opts: { idleMs?: number } = {}): SandboxLauncher {
  const idleMs = opts.idleMs ?? IDLE_MS;
  const idle: { shell: Shell; timer: NodeJS.Timeout }[] = [];
  const finish = (shell: Shell) => {
    const job = shell.current;
    if (!job || job.open > 0 || job.status === undefined) return;
    shell.current = undefined;
    holdProcess(shell.proc, false);
    const timer = setTimeout(() => {
      const i = idle.findIndex((e) => e.shell === shell);
      if (i >= 0) idle.splice(i, 1);
      shell.proc.stdin?.end();
    }, idleMs).unref();
    idle.push({ shell, timer });
    job.resolve(job.status);
  };
  const start = (): Shell => {
    const marker = Buffer.from(`\u001etsbuild-end-${randomBytes(6).toString("hex")}`);
    const proc = spawn("sh", ["-c", SCRIPT, `tsbuild-launcher-${process.pid}`, marker.toString()], {
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      detached: false,
    });
    const shell: Shell = { proc, marker };
    proc.on("error", () => undefined);
    proc.stdin?.on("error", () => undefined);
    const output = (stream: Readable | null, pick: (io: LaunchIO) => (c: Uint8Array) => void) => {
      let filter: ((chunk: Buffer) => boolean) | undefined;
      let owner: Job | undefined;
      stream?.on("data", (chunk: Buffer) => {
        const job = shell.current;
        if (!job) return;
        if (owner !== job) {
          owner = job;
          filter = markerFilter(marker, (c) => pick(job.io)(c));
        }
        if (filter?.(chunk)) {
          job.open--;
          owner = undefined;
          finish(shell);
        }
      });
    };
    output(proc.stdout, (io) => io.stdout.bind(io));
    output(proc.stderr, (io) => io.stderr.bind(io));
    let status = "";
    (proc.stdio[3] as Readable | null)?.on("data", (chunk: Buffer) => {
      status += chunk.toString();
      const nl = status.indexOf("\n");
      if (nl < 0 || !shell.current) return;
      shell.current.status = Number(status.slice(0, nl));
      status = status.slice(nl + 1);
      finish(shell);
    });
    proc.on("close", () => {
      const i = idle.findIndex((e) => e.shell === shell);
      if (i >= 0) {
        clearTimeout(idle[i]?.timer);
        idle.splice(i, 1);
      }
      const job = shell.current;
      shell.current = undefined;
      job?.reject(new Error("the launcher shell exited before the command finished"));
    });
    return shell;
  };
  return {
    run(argv, io) {
      const reused = idle.pop();
      if (reused) clearTimeout(reused.timer);
      const shell = reused?.shell ?? start();
      return new Promise<number>((resolve, reject) => {
        shell.current = { io, open: 2, resolve, reject };
        holdProcess(shell.proc, true);
        shell.proc.stdin?.write(`${shellQuote(argv)}\n`);
      });
    },
  };
}
