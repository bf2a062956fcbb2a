// Shared plumbing for executors: spawn the sandbox tool with piped output (and stdin when asked, or tsbuild's own
// stdio for a terminal), map its exit to a status, and keep calling `kill` on abort until the process is gone (the
// container may not exist yet at the first try). crun, runc and bwrap all hand these fds on to the process.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { AbortError, EnvironmentError } from "../errors.js";
import type { SandboxLauncher } from "./launcher.js";
import type { ProcessIO } from "./types.js";

export interface SpawnSandboxOptions {
  command: string;
  args: string[];
  io: ProcessIO;
  signal: AbortSignal;
  /** Open descriptors handed to the child as fds 3, 4, ... (bwrap's --args and --seccomp). */
  extraFds?: number[];
  /** Called on abort, then every 100 ms until the process exits. */
  kill(child: { kill(sig: NodeJS.Signals): boolean }): Promise<void> | void;
  /**
   * Start the command from this resident shell rather than forking node (crun/runc, whose `kill` needs no child):
   * used when there is no stdin, no terminal and no extra fd to hand over.
   */
  launcher?: SandboxLauncher;
}

/** Resolves with the exit status (128+n for signal n); rejects with AbortError if `signal` fired. */
export function spawnSandbox(opts: SpawnSandboxOptions): Promise<{ exitCode: number }> {
  if (opts.signal.aborted) return Promise.reject(new AbortError());
  const argv = [opts.command, ...opts.args];
  // The launcher's request is one line: an argument with a newline goes the direct way.
  if (opts.launcher && !opts.io.stdin && !opts.io.inheritStdio && !opts.extraFds?.length && !argv.some((a) => a.includes("\n") || a.includes("\0")))
    return launched(opts.launcher, argv, opts);
  return new Promise((resolve, reject) => {
    const io = opts.io;
    const inherit = io.inheritStdio === true;
    const stdin = inherit ? "inherit" : io.stdin ? "pipe" : "ignore";
    const out = inherit ? "inherit" : "pipe";
    const child = spawn(opts.command, opts.args, { stdio: [stdin, out, out, ...(opts.extraFds ?? [])] });
    const input = !inherit ? io.stdin : undefined;
    if (input && child.stdin) {
      // A process that exits (or closes its stdin) before reading everything is no error of ours: EPIPE is dropped.
      child.stdin.on("error", () => undefined);
      input.pipe(child.stdin);
    }
    const detachInput = () => {
      if (input && child.stdin) input.unpipe(child.stdin);
    };
    let timer: NodeJS.Timeout | undefined;
    let exited = false;
    const killLoop = (): void => {
      if (exited) return;
      void Promise.resolve(opts.kill(child)).catch(() => undefined);
      timer = setTimeout(killLoop, 100);
    };
    const onAbort = (): void => killLoop();
    opts.signal.addEventListener("abort", onAbort, { once: true });
    child.stdout?.on("data", (c: Buffer) => opts.io.stdout(c));
    child.stderr?.on("data", (c: Buffer) => opts.io.stderr(c));
    child.on("error", (err: NodeJS.ErrnoException) => {
      exited = true;
      detachInput();
      opts.signal.removeEventListener("abort", onAbort);
      if (timer) clearTimeout(timer);
      reject(
        err.code === "ENOENT"
          ? new EnvironmentError("NO_RUNTIME", `${opts.command} is not installed`, {
              hint: "run `tsbuild doctor` to see which runtime RUN can use here",
              cause: err,
            })
          : new EnvironmentError("RUNTIME_FAILED", `cannot start ${opts.command}: ${err.message}`, { cause: err }),
      );
    });
    child.on("close", (code, sig) => {
      exited = true;
      detachInput();
      opts.signal.removeEventListener("abort", onAbort);
      if (timer) clearTimeout(timer);
      if (opts.signal.aborted) return reject(new AbortError());
      const exitCode = code ?? 128 + (sig ? (constants.signals[sig] ?? 0) : 0);
      resolve({ exitCode });
    });
  });
}

/** spawnSandbox through a launcher: the same abort handling, without a child process of our own to signal. */
async function launched(launcher: SandboxLauncher, argv: string[], opts: SpawnSandboxOptions): Promise<{ exitCode: number }> {
  let timer: NodeJS.Timeout | undefined;
  let exited = false;
  const killLoop = (): void => {
    if (exited) return;
    void Promise.resolve(opts.kill({ kill: () => false })).catch(() => undefined);
    timer = setTimeout(killLoop, 100);
  };
  opts.signal.addEventListener("abort", killLoop, { once: true });
  try {
    const exitCode = await launcher.run(argv, opts.io);
    if (opts.signal.aborted) throw new AbortError();
    return { exitCode };
  } catch (e) {
    if (opts.signal.aborted) throw new AbortError();
    throw new EnvironmentError("RUNTIME_FAILED", `cannot run ${opts.command}: ${(e as Error).message}`, { cause: e });
  } finally {
    exited = true;
    opts.signal.removeEventListener("abort", killLoop);
    if (timer) clearTimeout(timer);
  }
}

/** Runs a short helper command; resolves with its exit code and output, never rejects on a non-zero exit. */
export { runQuiet } from "../util/run.js";
