// `tsbuild run [flags] IMAGE [COMMAND [ARG...]]`: docker run's flags, parsed and checked here; the library's
// runContainer does the rest. The container's exit status is tsbuild's; tsbuild's own errors exit 125, as docker's.
import { parseSnapshotter } from "../snapshotter-flag.js";
import { isatty } from "node:tty";
import { UsageError } from "../../errors.js";
import { flagBool, flagList, flagString, parseArgs } from "../args.js";
import { storeRootFlag } from "../inputs.js";
import { GLOBAL_FLAGS, type Command, type CommandContext } from "../context.js";
import { openEngine } from "../../engine.js";
import { parseVolume, runContainer } from "../../api/run-container.js";
import { readEnvFlags } from "../env-flags.js";

export const runCommand: Command = {
  name: "run",
  usage: "tsbuild run [flags] IMAGE [COMMAND [ARG...]]",
  summary:
    "Run a command in a new container of an image, as `docker run --rm` does: on RUN's sandbox, over a throwaway snapshot\n" +
    "(nothing a run writes reaches the image or the build cache; the container is always removed, so --rm is implied).\n" +
    "Flags go before IMAGE; everything after it is the command. The exit status is the command's (125: tsbuild failed).",
  stopAtPositional: true,
  errorExitCode: 125,
  flags: [
    { name: "env", short: "e", type: "list", value: "KEY=VALUE", help: "set a variable (repeatable); KEY alone takes it from this environment" },
    { name: "env-file", type: "list", value: "FILE", help: "read variables from FILE, one KEY=VALUE per line, # comments (repeatable)" },
    { name: "volume", short: "v", type: "list", value: "HOST:CTR[:ro]", help: "bind a host path (absolute, existing) into the container" },
    { name: "workdir", short: "w", type: "string", value: "DIR", help: "working directory inside the container (created when missing)" },
    { name: "user", short: "u", type: "string", value: "USER[:GROUP]", help: "name, uid, uid:gid or name:group from the image's /etc/passwd" },
    { name: "entrypoint", type: "string", value: "CMD", help: 'replace the image\'s ENTRYPOINT (its CMD is dropped); "" resets it' },
    { name: "network", type: "string", value: "MODE", help: "default (private, outbound via slirp4netns), none (only lo) or host" },
    { name: "interactive", short: "i", type: "boolean", help: "pass standard input to the container" },
    { name: "tty", short: "t", type: "boolean", help: "give the container this terminal (standard input must be one)" },
    { name: "rm", type: "boolean", help: "accepted for docker compatibility: the container is always removed" },
    { name: "executor", type: "string", value: "NAME", help: "sandbox: auto, crun, runc or bwrap (as for build)" },
    { name: "snapshotter", type: "string", value: "NAME", help: "snapshots: auto, overlay, fuse-overlayfs or copy (as for build)" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx: CommandContext) {
    const args = parseArgs(ctx.argv, this.flags, "run", { stopAtPositional: true });
    const [image, ...command] = args.positionals;
    if (image === undefined) throw new UsageError("BAD_ARGS", "`tsbuild run` needs an image", { hint: "e.g. `tsbuild run busybox:local echo hello world`" });
    const executor = flagString(args, "executor") ?? "auto";
    if (executor !== "auto" && executor !== "crun" && executor !== "runc" && executor !== "bwrap")
      throw new UsageError("BAD_FLAG_VALUE", `--executor takes auto, crun, runc or bwrap, not ${JSON.stringify(executor)}`);
    const snapshotter = parseSnapshotter(flagString(args, "snapshotter"), ctx.io.env);
    const network = flagString(args, "network") ?? "default";
    if (network !== "default" && network !== "none" && network !== "host")
      throw new UsageError("BAD_FLAG_VALUE", `--network takes default, none or host, not ${JSON.stringify(network)}`, {
        hint: network === "bridge" ? "default is tsbuild's private network (docker's bridge)" : "named networks do not exist in tsbuild",
      });
    const interactive = flagBool(args, "interactive");
    const tty = flagBool(args, "tty");
    // No pty is allocated: the container gets this process's terminal, so there must be one (docker's error text).
    if (tty && !isatty(0))
      throw new UsageError("NOT_A_TTY", "the input device is not a TTY", {
        hint: "drop -t when standard input is a pipe or file (keep -i to pass it on); -t gives the container tsbuild's own terminal",
      });
    const volumes = flagList(args, "volume").map(parseVolume);
    const env = await readEnvFlags(flagList(args, "env-file"), flagList(args, "env"), ctx.io.cwd, ctx.io.env);
    const workdir = flagString(args, "workdir");
    const user = flagString(args, "user");
    const entrypoint = flagString(args, "entrypoint");
    const engine = openEngine({ root: await storeRootFlag(args) });
    const stdin = interactive && !tty ? ctx.io.stdin : undefined;
    try {
      const result = await runContainer(engine, {
        image,
        args: command,
        ...(entrypoint !== undefined ? { entrypoint } : {}),
        env,
        ...(workdir !== undefined ? { workdir } : {}),
        ...(user !== undefined ? { user } : {}),
        volumes,
        network,
        executor,
        snapshotter,
        ...(stdin ? { stdin } : {}),
        terminal: tty,
        stdout: (c) => ctx.io.stdout.write(c),
        stderr: (c) => ctx.io.stderr.write(c),
        signal: ctx.signal,
      });
      return result.exitCode;
    } finally {
      // A stdin that still has a writer (a terminal, an open pipe) must not keep tsbuild alive after the container.
      if (stdin) stdin.destroy();
    }
  },
};
