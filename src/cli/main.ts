// The CLI's one entry: picks the command, wires SIGINT/SIGTERM to an AbortSignal, and turns errors into messages and exit codes.
import { isTsbuildError } from "../errors.js";
import { describeFsError, errnoCode, isEnvironmentErrno } from "../store/fs-error.js";
import { helpText, type FlagSpec } from "./args.js";
import type { CliIO, Command } from "./context.js";
import { resolve } from "node:path";
import { codeFrame, readTextOrUndefined } from "./format.js";
import { suggest } from "../util/suggest.js";
import { needsUserNamespace, runInUserNamespace } from "./userns-reexec.js";

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
  "image prune": async () => (await import("./commands/store.js")).imagePruneCommand,
  pull: async () => (await import("./commands/registry.js")).pullCommand,
  push: async () => (await import("./commands/registry.js")).pushCommand,
  login: async () => (await import("./commands/registry.js")).loginCommand,
  logout: async () => (await import("./commands/registry.js")).logoutCommand,
  run: async () => (await import("./commands/run.js")).runCommand,
  platforms: async () => (await import("./commands/platforms.js")).platformsCommand,
  doctor: async () => (await import("./commands/doctor.js")).doctorCommand,
};

// docker's command groups: `tsbuild image ls` is `tsbuild images`, `tsbuild builder prune` is `tsbuild prune`, ...
const GROUPS: Record<string, Record<string, string>> = {
  image: {
    ls: "images",
    list: "images",
    rm: "rmi",
    remove: "rmi",
    inspect: "inspect",
    history: "history",
    tag: "tag",
    save: "save",
    load: "load",
    pull: "pull",
    push: "push",
    prune: "image prune",
    build: "build",
  },
  builder: { build: "build", prune: "prune", du: "du" },
  buildx: { build: "build", b: "build", prune: "prune", du: "du" },
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
  run        Run a command in a throwaway container of an image (like \`docker run --rm\`)
  platforms  List the platforms this machine can build for (native and emulated)
  doctor     Check what a build needs on this machine and print the fixes

Docker's command groups work too:
  image ls|list|rm|remove|inspect|history|tag|save|load|pull|push|prune|build
  builder prune|du|build, buildx build|prune|du

Run \`tsbuild help COMMAND\` or \`tsbuild COMMAND --help\` for a command's flags.
`;

export function defaultIO(): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    isTTY: Boolean(process.stderr.isTTY),
    // process.stdin makes its stream on first use (3-11 ms for a pipe, and node:tty and node:net with it): only
    // commands that read stdin or ask about it pay for it.
    get stdin() {
      return process.stdin;
    },
    get stdinIsTTY() {
      return Boolean(process.stdin.isTTY);
    },
    stdoutIsTTY: Boolean(process.stdout.isTTY),
    cwd: process.cwd(),
    env: process.env,
  };
}

export async function main(argv: string[], io: CliIO = defaultIO(), signal?: AbortSignal): Promise<number> {
  const debug = argv.includes("--debug");
  let command: Command | undefined;
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  signal?.addEventListener("abort", onSignal, { once: true });
  try {
    const first = argv[0];
    if (first === undefined || first === "--help" || first === "-h" || (first === "help" && argv.length === 1)) {
      io.stdout.write(SUMMARY);
      return first === undefined ? 2 : 0;
    }
    if (first === "version" || first === "--version") {
      io.stdout.write("tsbuild 0.1.0\n");
      return 0;
    }
    // `tsbuild help image ls` = `tsbuild image ls --help`.
    if (first === "help") return await main([...argv.slice(1), "--help"], io, signal);
    const resolved = resolveCommand(argv);
    if ("unknown" in resolved) {
      io.stderr.write(
        `tsbuild: unknown command "${resolved.unknown}"\n${resolved.near ? `Did you mean "${resolved.near}"?\n` : ""}Run \`tsbuild --help\` for the commands.\n`,
      );
      return 2;
    }
    if ("group" in resolved) {
      io.stdout.write(groupHelp(resolved.group));
      return resolved.help ? 0 : 2;
    }
    command = await resolved.load();
    const rest = resolved.rest;
    // `tsbuild run IMAGE sh --help`: what follows the image is the container's, not tsbuild's.
    const own = command.stopAtPositional ? rest.slice(0, firstPositional(rest, command.flags)) : rest;
    if (own.includes("--help") || own.includes("-h")) {
      if (resolved.alias) io.stdout.write(`\`tsbuild ${resolved.alias}\` is \`tsbuild ${resolved.name}\`.\n\n`);
      io.stdout.write(helpText(command.usage, command.summary, command.flags));
      return 0;
    }
    const code = await command.run({ argv: rest, io, signal: controller.signal });
    return typeof code === "number" ? code : 0;
  } catch (e) {
    const status = reportError(e, io, debug, controller.signal.aborted);
    return command?.errorExitCode !== undefined && status !== 130 ? command.errorExitCode : status;
  } finally {
    signal?.removeEventListener("abort", onSignal);
  }
}

type Resolved = { load: Loader; name: string; alias?: string; rest: string[] } | { unknown: string; near?: string } | { group: string; help: boolean };

/** argv → the command it names (through docker's groups), or what was not found with the nearest name. */
function resolveCommand(argv: readonly string[]): Resolved {
  const first = argv[0] as string;
  const group = GROUPS[first];
  if (group) {
    const sub = argv[1];
    if (sub === undefined || sub === "--help" || sub === "-h") return { group: first, help: sub !== undefined };
    const name = group[sub];
    if (name === undefined)
      return {
        unknown: `${first} ${sub}`,
        ...nearest(
          `${first} ${sub}`,
          Object.keys(group).map((k) => `${first} ${k}`),
        ),
      };
    return { load: COMMANDS[name] as Loader, name, alias: `${first} ${sub}`, rest: argv.slice(2) };
  }
  const loader = COMMANDS[first];
  if (loader && !first.includes(" ")) return { load: loader, name: first, rest: argv.slice(1) };
  // `tsbuild -t name .` means `tsbuild build -t name .`
  if (first.startsWith("-") || looksLikePath(first)) return { load: COMMANDS.build as Loader, name: "build", rest: [...argv] };
  const names = [...Object.keys(COMMANDS).filter((n) => !n.includes(" ")), ...Object.keys(GROUPS)];
  return { unknown: first, ...nearest(first, names) };
}

function nearest(word: string, candidates: readonly string[]): { near?: string } {
  const near = suggest(word, candidates);
  return near === undefined ? {} : { near };
}

function groupHelp(group: string): string {
  const subs = Object.entries(GROUPS[group] ?? {}).map(([sub, name]) => `  ${sub.padEnd(10)} = tsbuild ${name}`);
  return `Usage: tsbuild ${group} COMMAND\n\ndocker's \`${group}\` commands, each an alias:\n${subs.join("\n")}\n\nRun \`tsbuild ${group} COMMAND --help\` for a command's flags.\n`;
}

/** Index of the first positional argument (flags with a value skip it), or argv.length. */
function firstPositional(argv: readonly string[], flags: readonly FlagSpec[]): number {
  const withValue = new Set(flags.filter((f) => f.type !== "boolean").flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--" || !a.startsWith("-") || a === "-") return i;
    if (withValue.has(a)) i++;
  }
  return argv.length;
}

function looksLikePath(s: string): boolean {
  // git@host:repo.git (a git context) has no slash.
  return s === "." || s.includes("/") || s.startsWith(".") || s.startsWith("git@");
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
  const argv = process.argv.slice(2);
  // An ordinary user's build runs as root of a user namespace of its own (rootless): this process only starts it and
  // passes signals on. Here, not in bin.ts: the bundle's loader calls runCli directly.
  if (needsUserNamespace(argv, process.getuid?.() ?? 0, process.env)) {
    const debug = argv.includes("--debug") ? (line: string) => process.stderr.write(`${line}\n`) : undefined;
    process.exitCode = await runInUserNamespace(argv, debug ? { debug } : {}).catch((e: unknown) => reportError(e, defaultIO(), debug !== undefined, false));
    return;
  }
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // `tsbuild images | head`: a reader that went away is no crash. Exit as a Go CLI killed by SIGPIPE would (141);
  // whoever was writing (an export to stdout) reports its own error.
  let pipeClosed = false;
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    pipeClosed = true;
  });
  const code = await main(argv, defaultIO(), controller.signal);
  process.exitCode = controller.signal.aborted ? 130 : pipeClosed && code === 0 ? 141 : code;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
}
