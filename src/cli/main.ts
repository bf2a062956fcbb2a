// The CLI's one entry: picks the command, wires SIGINT/SIGTERM to an AbortSignal, and turns errors into messages and exit codes.
import { isTsbuildError } from "../errors.js";
import { describeFsError, errnoCode, isEnvironmentErrno } from "../store/fs-error.js";
import { helpText } from "./args.js";
import type { CliIO, Command } from "./context.js";
import { resolve } from "node:path";
import { codeFrame, readTextOrUndefined } from "./format.js";

type Loader = () => Promise<Command>;
// Commands load lazily: a `tsbuild images` never pays for the build machinery's imports.
const COMMANDS: Record<string, Loader> = {
  build: async () => (await import("./commands/build.js")).buildCommand,
  parse: async () => (await import("./commands/parse.js")).parseCommand,
  check: async () => (await import("./commands/check.js")).checkCommand,
  images: async () => (await import("./commands/images.js")).imagesCommand,
  history: async () => (await import("./commands/images.js")).historyCommand,
  inspect: async () => (await import("./commands/images.js")).inspectCommand,
  tag: async () => (await import("./commands/images.js")).tagCommand,
  rmi: async () => (await import("./commands/images.js")).rmiCommand,
  save: async () => (await import("./commands/archive.js")).saveCommand,
  load: async () => (await import("./commands/archive.js")).loadCommand,
  prune: async () => (await import("./commands/store.js")).pruneCommand,
  du: async () => (await import("./commands/store.js")).duCommand,
  pull: async () => (await import("./commands/registry.js")).pullCommand,
  push: async () => (await import("./commands/registry.js")).pushCommand,
  login: async () => (await import("./commands/registry.js")).loginCommand,
  logout: async () => (await import("./commands/registry.js")).logoutCommand,
  platforms: async () => (await import("./commands/platforms.js")).platformsCommand,
};

const SUMMARY = `tsbuild — a daemonless Dockerfile build engine

Usage: tsbuild [build flags] CONTEXT      (same as \`tsbuild build\`)
       tsbuild COMMAND [flags]

Commands:
  build      Build an image from a Dockerfile
  parse      Parse a Dockerfile and print its instructions
  check      Run the build checks (lint rules) without building
  images     List images in the local store
  history    Show the history of an image
  inspect    Print an image's config and manifest as JSON
  tag        Give an image another name
  rmi        Remove image names
  save       Write images to a docker-archive tar
  load       Import a docker-archive or OCI layout tar
  prune      Remove unused build cache and blobs (never tagged images)
  du         Show the store's disk usage
  pull       Download an image from a registry
  push       Upload an image to a registry
  login      Check and store credentials for a registry
  logout     Remove stored credentials for a registry
  platforms  List the platforms this machine can build for (native and emulated)

Run \`tsbuild COMMAND --help\` for a command's flags.
`;

export function defaultIO(): CliIO {
  return { stdout: process.stdout, stderr: process.stderr, isTTY: Boolean(process.stderr.isTTY), cwd: process.cwd(), env: process.env };
}

export async function main(argv: string[], io: CliIO = defaultIO(), signal?: AbortSignal): Promise<number> {
  const debug = argv.includes("--debug");
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  signal?.addEventListener("abort", onSignal, { once: true });
  try {
    const first = argv[0];
    if (first === undefined || first === "help" || first === "--help" || first === "-h") {
      io.stdout.write(SUMMARY);
      return first === undefined ? 2 : 0;
    }
    if (first === "version" || first === "--version") {
      io.stdout.write("tsbuild 0.1.0\n");
      return 0;
    }
    // `tsbuild -t name .` means `tsbuild build -t name .`
    const loader = COMMANDS[first];
    if (!loader && !first.startsWith("-") && !looksLikePath(first)) {
      io.stderr.write(`tsbuild: unknown command "${first}"\nRun \`tsbuild --help\` for the commands.\n`);
      return 2;
    }
    const command = await (loader ?? (COMMANDS.build as Loader))();
    const rest = loader ? argv.slice(1) : argv;
    if (rest.includes("--help") || rest.includes("-h")) {
      io.stdout.write(helpText(command.usage, command.summary, command.flags));
      return 0;
    }
    const code = await command.run({ argv: rest, io, signal: controller.signal });
    return typeof code === "number" ? code : 0;
  } catch (e) {
    return reportError(e, io, debug, controller.signal.aborted);
  } finally {
    signal?.removeEventListener("abort", onSignal);
  }
}

function looksLikePath(s: string): boolean {
  return s === "." || s.includes("/") || s.startsWith(".");
}

/**
 * Machine trouble that escaped the edges (disk full, read-only file system, too many open files, permission denied)
 * is no bug: say what and where. Other raw errors stay bugs.
 */
function environmentError(e: unknown): unknown {
  const code = errnoCode(e);
  if (code === undefined || !(isEnvironmentErrno(e) || code === "EACCES" || code === "EPERM")) return e;
  const err = e as NodeJS.ErrnoException;
  return describeFsError(e, err.path ?? "(a file)", err.syscall ? `cannot ${err.syscall}` : "file system error at");
}

export function reportError(raw: unknown, io: CliIO, debug: boolean, aborted: boolean): number {
  const e = environmentError(raw);
  if (isTsbuildError(e)) {
    const where = e.range ? `${e.range.file}:${e.range.start.line}:${e.range.start.column}: ` : "";
    io.stderr.write(`error: ${where}${e.message} [${e.code}]\n`);
    if (e.range) {
      const frame = codeFrame(e.range, (file) => readTextOrUndefined(resolve(io.cwd, file)));
      if (frame) io.stderr.write(frame + "\n");
    }
    if (e.hint) io.stderr.write(`hint: ${e.hint}\n`);
    if (debug && e.stack) io.stderr.write(e.stack + "\n");
    return aborted ? 130 : e.exitCode;
  }
  if (aborted) {
    io.stderr.write("error: build cancelled\n");
    return 130;
  }
  const msg = e instanceof Error ? e.message : String(e);
  io.stderr.write(`error: ${msg}\n`);
  if (debug && e instanceof Error && e.stack) io.stderr.write(e.stack + "\n");
  else io.stderr.write("hint: this is a bug in tsbuild; rerun with --debug for a stack trace and report it\n");
  return 1;
}

/** Process entry: SIGINT/SIGTERM cancel the running command (cleanup runs in its finally blocks); a second signal exits at once. */
export async function runCli(): Promise<void> {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const code = await main(process.argv.slice(2), defaultIO(), controller.signal);
  process.exitCode = controller.signal.aborted ? 130 : code;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
}
