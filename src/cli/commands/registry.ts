// Registry commands: pull, push, login, logout — flag parsing and output around src/registry.
import { UsageError } from "../../errors.js";
import { flagBool, flagList, flagString, parseArgs, type FlagSpec } from "../args.js";
import { storeRootFlag } from "../inputs.js";
import { GLOBAL_FLAGS, type Command, type CommandContext } from "../context.js";
import { openEngine } from "../../engine.js";
import { checkRegistryHost, familiarName, parseReference } from "../../image/reference.js";
import { registryOf } from "../../registry/login.js";
import { plainRenderer, quietRenderer } from "../../progress/renderers.js";
import { login, logout, parsePlatform, pullImage, pushImage, type ImageFormat } from "../../registry/index.js";
import { createInterface } from "node:readline/promises";

const REGISTRY_FLAGS: FlagSpec[] = [
  {
    name: "insecure-registry",
    type: "list",
    value: "HOST[:PORT]",
    help: "talk plain HTTP to this registry (repeatable; also $TSBUILD_INSECURE_REGISTRIES; loopback always is)",
  },
  { name: "authfile", type: "string", value: "PATH", help: "credentials file (default $DOCKER_CONFIG/config.json or ~/.docker/config.json)" },
];

function registryOptions(ctx: CommandContext, args: ReturnType<typeof parseArgs>) {
  const authFile = flagString(args, "authfile");
  return { insecureRegistries: flagList(args, "insecure-registry"), env: ctx.io.env, signal: ctx.signal, ...(authFile ? { authFile } : {}) };
}

export const pullCommand: Command = {
  name: "pull",
  usage: "tsbuild pull [flags] NAME[:TAG|@DIGEST]",
  summary: "Download an image from a registry into the local store.",
  flags: [
    { name: "platform", type: "string", value: "OS/ARCH[/VARIANT]", help: "which image of a multi-platform index (default: this machine's)" },
    { name: "quiet", short: "q", type: "boolean", help: "print only the image name" },
    ...REGISTRY_FLAGS,
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "pull");
    if (args.positionals.length !== 1)
      throw new UsageError("BAD_ARGS", "`tsbuild pull` takes exactly one image name", { hint: "e.g. tsbuild pull busybox:1.36" });
    const platformFlag = flagString(args, "platform");
    const quiet = flagBool(args, "quiet");
    const engine = openEngine({ root: await storeRootFlag(args), progress: quiet ? quietRenderer(ctx.io.stderr) : plainRenderer(ctx.io.stderr) });
    // pullImage holds the shared store lock itself (a prune cannot take blobs before the name lands).
    const r = await pullImage(engine, args.positionals[0] as string, {
      ...registryOptions(ctx, args),
      ...(platformFlag ? { platform: parsePlatform(platformFlag) } : {}),
    });
    if (!quiet) ctx.io.stdout.write(`Digest: ${r.remoteDigest}\nImage ID: ${r.config}\n`);
    ctx.io.stdout.write(`${r.name}\n`);
  },
};

export const pushCommand: Command = {
  name: "push",
  usage: "tsbuild push [flags] NAME[:TAG] [TARGET]",
  summary: "Upload a local image to its registry (or to TARGET, another name) and print the manifest digest.",
  flags: [
    { name: "format", type: "string", value: "oci|docker", help: "manifest media types: oci (default) or docker (v2 schema 2)" },
    { name: "quiet", short: "q", type: "boolean", help: "print only the digest" },
    ...REGISTRY_FLAGS,
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "push");
    if (args.positionals.length < 1 || args.positionals.length > 2)
      throw new UsageError("BAD_ARGS", "`tsbuild push` takes an image name and optionally a target name", {
        hint: "e.g. tsbuild push registry.example.com/team/app:1.0",
      });
    const format = flagString(args, "format") ?? "oci";
    if (format !== "oci" && format !== "docker") throw new UsageError("BAD_FLAG_VALUE", `--format takes oci or docker, not ${JSON.stringify(format)}`);
    const quiet = flagBool(args, "quiet");
    const [local, target] = args.positionals as [string, string | undefined];
    const engine = openEngine({ root: await storeRootFlag(args), progress: quiet ? quietRenderer(ctx.io.stderr) : plainRenderer(ctx.io.stderr) });
    // pushImage checks the names first, then holds the shared store lock for the whole push: a prune says the store
    // is busy instead of removing the blobs being uploaded; `rmi` only removes names, so the push still completes.
    const r = await pushImage(engine, local, target ?? local, { ...registryOptions(ctx, args), format: format as ImageFormat });
    ctx.io.stdout.write(quiet ? `${r.digest}\n` : `${familiarName(target ?? local)}: digest: ${r.digest} size: ${r.size}\n`);
  },
};

async function readStdin(ctx: CommandContext): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of ctx.io.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

/** Read a line from the terminal without echoing it. */
async function promptHidden(ctx: CommandContext, question: string): Promise<string> {
  const stdin = process.stdin;
  ctx.io.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    let value = "";
    for await (const chunk of stdin as AsyncIterable<Buffer>) {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return value;
        if (ch === "\u0003") throw new UsageError("CANCELLED", "login cancelled");
        if (ch === "\u007f") value = value.slice(0, -1);
        else value += ch;
      }
    }
    return value;
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    ctx.io.stderr.write("\n");
  }
}

async function promptLine(ctx: CommandContext, question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: ctx.io.stderr as NodeJS.WritableStream });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/** A server argument that is no usable host[:port] ("localhost:99999") fails here, not as a URL error later. */
function checkServer(server: string): void {
  const registry = registryOf(server);
  if (registry !== "docker.io") checkRegistryHost(registry, server);
}

export const loginCommand: Command = {
  name: "login",
  usage: "tsbuild login [flags] [SERVER]",
  summary: "Check credentials with a registry and store them in the Docker config file (default server docker.io).",
  flags: [
    { name: "username", short: "u", type: "string", value: "USER", help: "user name" },
    { name: "password", short: "p", type: "string", value: "PASSWORD", help: "password (visible in the process list: prefer --password-stdin)" },
    { name: "password-stdin", type: "boolean", help: "read the password from standard input" },
    ...REGISTRY_FLAGS,
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "login");
    if (args.positionals.length > 1) throw new UsageError("BAD_ARGS", "`tsbuild login` takes at most one server");
    const server = args.positionals[0] ?? "docker.io";
    checkServer(server);
    let username = flagString(args, "username");
    let password = flagString(args, "password");
    const fromStdin = flagBool(args, "password-stdin");
    if (fromStdin && password !== undefined) throw new UsageError("BAD_ARGS", "--password and --password-stdin cannot be used together");
    if (fromStdin) {
      if (username === undefined) throw new UsageError("MISSING_FLAG", "--password-stdin needs --username (-u)");
      password = (await readStdin(ctx)).replace(/\r?\n$/, "");
    }
    if (password !== undefined && !fromStdin) ctx.io.stderr.write("WARNING: a password on the command line is visible to other users; use --password-stdin\n");
    if (username === undefined || password === undefined) {
      if (!ctx.io.stdinIsTTY)
        throw new UsageError("MISSING_FLAG", "no terminal to ask for credentials", {
          hint: "pass -u USER --password-stdin and the password on standard input",
        });
      username ??= await promptLine(ctx, "Username: ");
      password ??= await promptHidden(ctx, "Password: ");
    }
    if (username === "" || password === "") throw new UsageError("BAD_ARGS", "the user name and password must not be empty");
    const r = await login(server, { username, password }, registryOptions(ctx, args));
    ctx.io.stdout.write(`Login Succeeded (${r.registry}; credentials saved in ${r.file})\n`);
  },
};

export const logoutCommand: Command = {
  name: "logout",
  usage: "tsbuild logout [flags] [SERVER]",
  summary: "Remove the stored credentials for a registry (default docker.io).",
  flags: [
    { name: "authfile", type: "string", value: "PATH", help: "credentials file (default $DOCKER_CONFIG/config.json or ~/.docker/config.json)" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "logout");
    if (args.positionals.length > 1) throw new UsageError("BAD_ARGS", "`tsbuild logout` takes at most one server");
    const authFile = flagString(args, "authfile");
    checkServer(args.positionals[0] ?? "docker.io");
    const r = await logout(args.positionals[0] ?? "docker.io", { env: ctx.io.env, ...(authFile ? { authFile } : {}) });
    ctx.io.stdout.write(r.removed ? `Removing login credentials for ${r.registry}\n` : `Not logged in to ${r.registry}\n`);
  },
};
