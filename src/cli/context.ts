// What every CLI command receives: its arguments, output streams, the abort signal and the global flags.
import type { Readable, Writable } from "node:stream";
import type { FlagSpec } from "./args.js";

export interface CliIO {
  stdout: Writable;
  stderr: Writable;
  /** Whether stderr is a terminal (the progress view). */
  isTTY: boolean;
  /** `build -`, `-f -`, `load` without -i. */
  stdin: Readable;
  /** Whether stdin is a terminal: reading a context or an archive from it is then an error, not a wait. */
  stdinIsTTY: boolean;
  /** Whether stdout is a terminal: binary output (`save` without -o) is then refused. */
  stdoutIsTTY: boolean;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

export interface CommandContext {
  argv: string[];
  io: CliIO;
  signal: AbortSignal;
}

export interface Command {
  name: string;
  usage: string;
  summary: string;
  flags: FlagSpec[];
  /** Flags end at the first positional (what follows belongs to something else, like `run IMAGE CMD --help`). */
  stopAtPositional?: boolean;
  /** Exit status for a tsbuild error other than a cancel (`run`: 125, as docker keeps 1-124 for the container's own). */
  errorExitCode?: number;
  run(ctx: CommandContext): Promise<number | void>;
}

/** Flags every command takes. */
export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: "root", type: "string", value: "DIR", help: "store directory (default $TSBUILD_ROOT or ~/.local/share/tsbuild)" },
  { name: "debug", type: "boolean", help: "print stack traces for errors" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];
