// A persistent shell that runs short helper commands (mount, umount, mknod) one after another. Every spawn from
// node forks the whole node process, which costs milliseconds at a build's memory size; a small `sh` forks cheaply,
// and each RUN runs two or three such commands. Lines reach the shell on a pipe only we hold: when tsbuild goes
// away the pipe closes and the shell ends; idle, it ends by itself, so nothing is left once a build is done.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { runQuiet } from "./run.js";

export interface CommandResult {
  /** Exit status; -1 when the command did not run or the shell went away. */
  code: number;
  /** What the command wrote on stdout and stderr, together, trailing newlines removed. */
  output: string;
}

export interface CommandShell {
  /** Runs `command args…` (no PATH tricks, no shell syntax: arguments are quoted) and reports its status and output. */
  run(command: string, args: readonly string[]): Promise<CommandResult>;
}

/** How long an idle shell stays for the next command (a RUN's umount follows its mount by the runtime's run time). */
const IDLE_MS = 2000;

/** argv as one POSIX shell command line, each argument single-quoted (no expansion of any kind). */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((x) => `'${x.replace(/'/g, "'\\''")}'`).join(" ");
}

// $1 is a per-shell marker that ends each result: `<output>\n<marker> <status>\n`. Deaf to Ctrl-C like the watchdog
// (tsbuild's own clean-up after Ctrl-C still needs it); stdin of the command is /dev/null, never our pipe.
const SCRIPT = [
  'trap "" INT TERM HUP; m=$1',
  'while IFS= read -r line; do out=$(eval "$line" </dev/null 2>&1); rc=$?; printf "%s\\n%s %s\\n" "$out" "$m" "$rc"; done',
].join("\n");

/**
 * An idle helper shell must not keep this process alive (the pipe's closing at exit is what ends it); one with a
 * command in flight must, or a caller awaiting only that command would see the event loop run dry.
 */
export function holdProcess(proc: ChildProcess, busy: boolean): void {
  for (const h of [proc, ...proc.stdio] as unknown as ({ ref?(): void; unref?(): void } | null)[]) {
    if (busy) h?.ref?.();
    else h?.unref?.();
  }
}

interface Session {
  proc: ChildProcess;
  /** Callers waiting for their command's result, in the order their lines were written. */
  pending: ((r: CommandResult) => void)[];
}

/** A shell started at the first command and ended after `idleMs` without one (or when this process exits). */
export function commandShell(opts: { idleMs?: number } = {}): CommandShell {
  const idleMs = opts.idleMs ?? IDLE_MS;
  let current: Session | undefined;
  let idle: NodeJS.Timeout | undefined;
  const stop = () => {
    current?.proc.stdin?.end();
    current = undefined;
  };
  const start = (): Session => {
    const marker = `\u001etsbuild-${randomBytes(6).toString("hex")}`;
    const proc = spawn("sh", ["-c", SCRIPT, `tsbuild-commands-${process.pid}`, marker], { stdio: ["pipe", "pipe", "ignore"], detached: true });
    const session: Session = { proc, pending: [] };
    let buffer = "";
    proc.on("error", () => undefined);
    proc.stdin?.on("error", () => undefined);
    proc.stdout?.setEncoding("utf8");
    proc.stdout?.on("data", (chunk: string) => {
      buffer += chunk;
      for (;;) {
        const at = buffer.indexOf(`\n${marker} `);
        const end = at < 0 ? -1 : buffer.indexOf("\n", at + marker.length + 2);
        if (end < 0) return;
        const output = buffer.slice(0, at);
        const code = Number(buffer.slice(at + marker.length + 2, end));
        buffer = buffer.slice(end + 1);
        session.pending.shift()?.({ code: Number.isInteger(code) ? code : -1, output });
        if (session.pending.length === 0) {
          holdProcess(session.proc, false);
          if (session === current) idle = setTimeout(stop, idleMs).unref();
        }
      }
    });
    proc.on("close", () => {
      if (session === current) current = undefined;
      for (const p of session.pending.splice(0)) p({ code: -1, output: "the command shell exited" });
    });
    return session;
  };
  return {
    run(command, args) {
      const argv = [command, ...args];
      // A newline would end the request line early: such a command (never a path of ours in practice) runs directly.
      if (argv.some((a) => a.includes("\n") || a.includes("\0"))) {
        return runQuiet(command, args).then((r) => ({ code: r.code, output: `${r.stdout}${r.stderr}`.trimEnd() }));
      }
      if (idle) clearTimeout(idle);
      idle = undefined;
      const session = (current ??= start());
      return new Promise((resolve) => {
        if (session.pending.length === 0) holdProcess(session.proc, true);
        session.pending.push(resolve);
        session.proc.stdin?.write(`${shellQuote(argv)}\n`);
      });
    },
  };
}
