// `tsbuild build [flags] CONTEXT`: parse flags, pick the progress renderer, call the library's buildImage.
import { resolve } from "node:path";
import { UsageError } from "../../errors.js";
import { flagBool, flagList, flagString, parseArgs, parseCsvKeyValues } from "../args.js";
import { locateDockerfile } from "../../context/locate-dockerfile.js";
import { parseContextSpec } from "../../context/context-spec.js";
import { materializeContext, type MaterializeOptions } from "../../context/materialize-context.js";
import { parseBuildArgs, readDockerfileFromStdin, storeRootFlag } from "../inputs.js";
import { GLOBAL_FLAGS, type CliIO, type Command, type CommandContext } from "../context.js";
import { openEngine, type Engine } from "../../engine.js";
import { parseCacheFrom, parseCacheTo } from "../cache-flags.js";
import { materializeNamedContexts } from "../../context/named-context.js";
import { parseShmSize, parseUlimits } from "../run-limits.js";
import { parseAnnotation } from "../../image/annotations.js";
import { buildImage } from "../../api/build-image.js";
import { parseSnapshotter } from "../snapshotter-flag.js";
import { parseSecretFlag } from "../../solver/mount-spec.js";
import { parseSshFlag } from "../../solver/ssh-agents.js";
import type { OutputSpec } from "../../exporter/outputs.js";
import { checkLevel } from "../../layer/compression-options.js";
import { parseReference } from "../../image/reference.js";
import { parsePlatformList } from "../../image/platform.js";
import { jsonRenderer, plainRenderer, quietRenderer } from "../../progress/renderers.js";
import type { ProgressSink } from "../../progress/events.js";

export const buildCommand: Command = {
  name: "build",
  usage: "tsbuild build [flags] CONTEXT",
  summary:
    "Build an image from a Dockerfile and a context: a directory, `-` (a tar or a Dockerfile on stdin), a git URL (https://host/repo.git#REF:SUBDIR, git@host:repo, ssh://, git://) or an http(s) URL of a tar.",
  flags: [
    { name: "tag", short: "t", type: "list", value: "NAME[:TAG]", help: "name the image (repeatable)" },
    {
      name: "file",
      short: "f",
      type: "string",
      value: "PATH",
      help: "Dockerfile to use (default CONTEXT/Dockerfile; - reads stdin; for a tar, git or URL context: a path inside it)",
    },
    { name: "build-arg", type: "list", value: "KEY=VALUE", help: "set a build argument (repeatable); KEY alone takes it from the environment" },
    { name: "target", type: "string", value: "STAGE", help: "build this stage and the stages it needs" },
    {
      name: "platform",
      type: "list",
      value: "OS/ARCH[/VARIANT]",
      help: "target platform(s), comma-separated or repeated (default: this machine's); several give an image index",
    },
    {
      name: "output",
      short: "o",
      type: "list",
      value: "SPEC",
      help: "type=oci|docker|local|tar|image,dest=PATH[,tar=false] (repeatable); dest=- or -o - writes the tar to stdout; type=oci and type=image (for --push) take compression=gzip|zstd|uncompressed, compression-level=N (gzip 0-9, zstd 1-22), force-compression=true",
    },
    { name: "progress", type: "string", value: "MODE", help: "auto, plain, json or quiet" },
    { name: "quiet", short: "q", type: "boolean", help: "print only the image id" },
    { name: "no-cache", type: "boolean", help: "run every step; use no cached result (results are still cached for later builds)" },
    { name: "no-cache-filter", type: "list", value: "STAGE", help: "run the steps of these stages without the cache (repeatable, or comma-separated)" },
    { name: "explain-cache", type: "boolean", help: "say for every step that missed the cache which input changed since its last build" },
    { name: "pull", type: "boolean", help: "pull base images from their registry even when the store has them" },
    { name: "push", type: "boolean", help: "push the image to the registry of each -t name after building" },
    { name: "insecure-registry", type: "list", value: "HOST", help: "speak plain HTTP to this registry (loopback always is); repeatable" },
    { name: "cache-from", type: "list", value: "SPEC", help: "import cache: type=local,src=DIR[,tag=T] or type=registry,ref=REF (repeatable)" },
    {
      name: "cache-to",
      type: "list",
      value: "SPEC",
      help: "export cache: type=local,dest=DIR[,tag=T] or type=registry,ref=REF, with mode=min (default) or max; cache-mounts=true also carries the RUN --mount=type=cache contents",
    },
    { name: "metadata-file", type: "string", value: "FILE", help: "write the image digest, config digest and per-step cache results as JSON" },
    { name: "jobs", type: "string", value: "N", help: "stages built in parallel (default: cores)" },
    { name: "check", type: "boolean", help: "run the build checks only, without building (like `tsbuild check`)" },
    {
      name: "call",
      type: "string",
      value: "METHOD",
      help: "build (default), check, outline (the args, secrets, ssh ids a target takes) or targets (the stages); add ,format=json for JSON",
    },
    { name: "secret", type: "list", value: "id=ID,src=PATH|env=VAR", help: "a secret for RUN --mount=type=secret (repeatable)" },
    {
      name: "ssh",
      type: "list",
      value: "default|ID[=SOCKET|KEY,…]",
      help: "an SSH agent for RUN --mount=type=ssh: default is $SSH_AUTH_SOCK; key files get an ssh-agent of their own (repeatable)",
    },
    { name: "executor", type: "string", value: "NAME", help: "RUN sandbox: auto, crun, runc or bwrap" },
    { name: "snapshotter", type: "string", value: "NAME", help: "RUN snapshots: auto, overlay, fuse-overlayfs or copy (default $TSBUILD_SNAPSHOTTER or auto)" },
    {
      name: "allow",
      type: "list",
      value: "ENTITLEMENT",
      help: "grant an entitlement: network.host (RUN --network=host shares the host's network) or security.insecure (RUN --security=insecure runs privileged)",
    },
    { name: "pids-limit", type: "string", value: "N", help: "most processes one RUN may have at once (default 1024)" },
    { name: "label", type: "list", value: "KEY=VALUE", help: "set a label on the image (repeatable)" },
    { name: "iidfile", type: "string", value: "FILE", help: "write the image id to FILE" },
    { name: "network", type: "string", value: "MODE", help: "network of RUN steps without --network=: default, none or host" },
    { name: "add-host", type: "list", value: "HOST:IP", help: "add an /etc/hosts entry for RUN steps (repeatable)" },
    { name: "shm-size", type: "string", value: "SIZE", help: "size of /dev/shm in RUN steps, e.g. 64m (default), 1g" },
    { name: "ulimit", type: "list", value: "NAME=SOFT[:HARD]", help: "a resource limit for RUN steps, e.g. nofile=1024:2048 (repeatable)" },
    {
      name: "annotation",
      type: "list",
      value: "[TYPE:]KEY=VALUE",
      help: "annotate the manifest (default), or TYPE index, manifest-descriptor, index-descriptor, e.g. manifest[linux/amd64]:K=V (repeatable)",
    },
    { name: "load", type: "boolean", help: "hand the image to the running Docker engine (docker load)" },
    { name: "provenance", type: "string", value: "false", help: "accepted as false (tsbuild writes no attestations yet); other values are refused" },
    { name: "sbom", type: "string", value: "false", help: "accepted as false (tsbuild writes no attestations yet); other values are refused" },
    {
      name: "build-context",
      type: "list",
      value: "NAME=VALUE",
      help: "a named context for FROM NAME / COPY --from=NAME (overrides a stage or image of that name): DIR, docker-image://REF, oci-layout://DIR[:TAG][@DIGEST], a git or http(s) URL",
    },
    { name: "rm", type: "boolean", help: "accepted for docker compatibility (tsbuild never leaves containers)" },
    { name: "force-rm", type: "boolean", help: "accepted for docker compatibility (tsbuild never leaves containers)" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx: CommandContext) {
    const args = parseArgs(ctx.argv, this.flags, "build");
    if (args.positionals.length !== 1)
      throw new UsageError("BAD_ARGS", `\`tsbuild build\` takes exactly one context directory, got ${args.positionals.length}`, {
        hint: "e.g. `tsbuild build -t name .`",
      });
    const spec = parseContextSpec(args.positionals[0] as string);
    const contextDir = resolve(ctx.io.cwd, args.positionals[0] as string);
    const callFlag = flagString(args, "call");
    const call = callFlag === undefined ? undefined : (await import("./call.js")).parseCall(callFlag);
    const checkOnly = flagBool(args, "check") || call?.method === "check";
    if ((checkOnly || call?.method === "outline" || call?.method === "targets") && spec.kind !== "dir")
      throw new UsageError(
        "UNSUPPORTED",
        `${checkOnly ? "--check" : `--call=${call?.method}`} needs a local context directory; a tar, git or URL context is not supported with it yet`,
        {
          hint: "run it on a local checkout",
        },
      );
    if (checkOnly) {
      const { checkCommand } = await import("./check.js");
      const file = flagString(args, "file");
      return checkCommand.run({
        ...ctx,
        argv: [
          ...(file ? ["-f", file] : []),
          ...flagList(args, "build-arg").flatMap((a) => ["--build-arg", a]),
          ...(call?.format === "json" ? ["--format", "json"] : []),
          args.positionals[0] as string,
        ],
      });
    }
    if (call?.method === "outline" || call?.method === "targets") {
      const { runCall } = await import("./call.js");
      const [file, target] = [flagString(args, "file"), flagString(args, "target")];
      return runCall(
        ctx,
        { ...call, method: call.method },
        {
          ...(file !== undefined ? { file } : {}),
          context: args.positionals[0] as string,
          buildArgs: parseBuildArgs(flagList(args, "build-arg"), ctx.io.env),
          ...(target !== undefined ? { target } : {}),
        },
      );
    }
    const buildArgs = parseBuildArgs(flagList(args, "build-arg"), ctx.io.env);
    const platformFlags = flagList(args, "platform");
    // A bad platform fails before anything else is read.
    if (platformFlags.length) parsePlatformList(platformFlags.join(","));
    const jobsText = flagString(args, "jobs");
    const jobs = jobsText === undefined ? undefined : Number(jobsText);
    if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1))
      throw new UsageError("BAD_FLAG_VALUE", `--jobs takes a positive whole number, not ${JSON.stringify(jobsText)}`);
    const outputs = toStdout(
      flagList(args, "output").map((o) => parseOutput(o, ctx.io.cwd)),
      ctx.io,
    );
    const quiet = flagBool(args, "quiet");
    const mode = quiet ? "quiet" : (flagString(args, "progress") ?? "auto");
    const explain = flagBool(args, "explain-cache");
    let progress: ProgressSink;
    if (mode === "tty" || (mode === "auto" && ctx.io.isTTY)) {
      const { ttyRenderer } = await import("../../progress/tty-renderer.js");
      progress = ttyRenderer(ctx.io.stderr as unknown as Parameters<typeof ttyRenderer>[0], { explain, env: ctx.io.env });
    } else if (mode === "plain" || mode === "auto") progress = plainRenderer(ctx.io.stderr, { explain });
    else if (mode === "json") progress = jsonRenderer(ctx.io.stderr);
    else if (mode === "quiet") progress = quietRenderer(ctx.io.stderr);
    else throw new UsageError("BAD_FLAG_VALUE", `--progress takes auto, tty, plain, json or quiet, not ${JSON.stringify(mode)}`);

    const executor = flagString(args, "executor") ?? "auto";
    if (executor !== "auto" && executor !== "crun" && executor !== "runc" && executor !== "bwrap")
      throw new UsageError("BAD_FLAG_VALUE", `--executor takes auto, crun, runc or bwrap, not ${JSON.stringify(executor)}`);
    // CI scripts pass --provenance=false / --sbom=false to turn buildx's attestations off: nothing to turn off here.
    for (const flag of ["provenance", "sbom"] as const) {
      const v = flagString(args, flag);
      if (v !== undefined && !/^(false|0)$/i.test(v))
        throw new UsageError("UNSUPPORTED", `--${flag}=${v}: attestations are not supported yet`, {
          hint: `drop the flag or pass --${flag}=false; the image is built without ${flag === "sbom" ? "an SBOM" : "provenance"} attestations`,
        });
    }
    const allow = flagList(args, "allow")
      .flatMap((v) => v.split(","))
      .filter((v) => v !== "");
    for (const a of allow)
      if (a !== "network.host" && a !== "security.insecure")
        throw new UsageError("BAD_FLAG_VALUE", `--allow ${a}: unknown entitlement`, {
          hint: "the entitlements are network.host and security.insecure",
        });
    const pidsText = flagString(args, "pids-limit");
    const pidsLimit = pidsText === undefined ? undefined : Number(pidsText);
    if (pidsLimit !== undefined && (!/^\d+$/.test(pidsText as string) || pidsLimit < 16 || pidsLimit > 4194304))
      throw new UsageError("BAD_FLAG_VALUE", `--pids-limit takes a whole number from 16 to 4194304, not ${JSON.stringify(pidsText)}`);
    const labels = parseLabels(flagList(args, "label"));
    const network = flagString(args, "network");
    if (network !== undefined && network !== "default" && network !== "none" && network !== "host")
      throw new UsageError("BAD_FLAG_VALUE", `--network takes default, none or host, not ${JSON.stringify(network)}`);
    const addHosts = flagList(args, "add-host").map(parseAddHost);
    const shmText = flagString(args, "shm-size");
    const shmSize = shmText === undefined ? undefined : parseShmSize(shmText);
    const ulimits = parseUlimits(flagList(args, "ulimit"));
    const annotations = flagList(args, "annotation").flatMap(parseAnnotation);
    const iidFlag = flagString(args, "iidfile");
    const snapshotter = parseSnapshotter(flagString(args, "snapshotter"), ctx.io.env);
    const epochText = ctx.io.env.SOURCE_DATE_EPOCH;
    if (epochText !== undefined && epochText !== "" && !/^\d+$/.test(epochText))
      throw new UsageError("BAD_ENV", `SOURCE_DATE_EPOCH must be a whole number of seconds, not ${JSON.stringify(epochText)}`);
    const cacheFrom = flagList(args, "cache-from").map((v) => parseCacheFrom(v, ctx.io.cwd));
    const cacheTo = flagList(args, "cache-to").map((v) => parseCacheTo(v, ctx.io.cwd));
    const fileFlag = flagString(args, "file");
    const loc = locateDockerfile(ctx.io.cwd, fileFlag === "-" ? undefined : fileFlag, args.positionals[0]);
    const metadataFlag = flagString(args, "metadata-file");
    const secrets = new Map(flagList(args, "secret").map((v) => parseSecretFlag(v, ctx.io.env)));
    const ssh = new Map(flagList(args, "ssh").map((v) => parseSshFlag(v, ctx.io.env, ctx.io.cwd)));
    const engine = openEngine({ root: await storeRootFlag(args), progress });
    // `build - -f -` is refused by materializeContext before anything is read.
    const stdinDockerfile = fileFlag === "-" && spec.kind !== "stdin" ? await readDockerfileFromStdin(ctx.io.stdin, ctx.signal) : undefined;
    // `-`, a git URL or an http(s) URL: unpacked or fetched into a temporary directory, removed after the build.
    const fetched = spec.kind === "dir" ? undefined : await materializeContext(spec, contextOptions(ctx, engine, fileFlag, progress));
    const inContext = fetched?.dockerfile;
    let named: Awaited<ReturnType<typeof materializeNamedContexts>> | undefined;
    try {
      named = await materializeNamedContexts(flagList(args, "build-context"), ctx.io.cwd, contextOptions(ctx, engine, undefined, progress));
    } catch (e) {
      await fetched?.release();
      throw e;
    }
    // Everything after flag parsing (caches, the store lock, push, metadata, outputs) is the library's buildImage.
    // The view closes also when the build fails: the terminal view then prints its summary (the failed step's log
    // block) and stops redrawing before the error is printed below it.
    const result = await buildImage(engine, {
      contextDir: fetched?.contextDir ?? contextDir,
      ...(named.contexts.size ? { namedContexts: named.contexts } : {}),
      ...(fetched ? { temporaryContext: true, contextOrigin: fetched.origin } : {}),
      ...(stdinDockerfile !== undefined
        ? { dockerfileText: stdinDockerfile, dockerfileDisplayName: "<stdin>" }
        : inContext && "text" in inContext
          ? { dockerfileText: inContext.text, dockerfileDisplayName: inContext.display }
          : { dockerfile: inContext?.path ?? loc.path, dockerfileDisplayName: inContext?.display ?? loc.display }),
      ...(epochText ? { sourceDateEpoch: Number(epochText) } : {}),
      tags: flagList(args, "tag"),
      buildArgs,
      ...(flagString(args, "target") !== undefined ? { target: flagString(args, "target") as string } : {}),
      ...(platformFlags.length ? { platforms: parsePlatformList(platformFlags.join(",")) } : {}),
      ...(jobs !== undefined ? { jobs } : {}),
      executor,
      snapshotter,
      allow,
      ...(pidsLimit !== undefined ? { pidsLimit } : {}),
      ...(Object.keys(labels).length ? { labels } : {}),
      ...(network !== undefined ? { network } : {}),
      ...(addHosts.length ? { addHosts } : {}),
      ...(shmSize !== undefined ? { shmSize } : {}),
      ...(ulimits.length ? { ulimits } : {}),
      ...(annotations.length ? { annotations } : {}),
      ...(iidFlag !== undefined ? { iidFile: iidFlag === "" ? "" : resolve(ctx.io.cwd, iidFlag) } : {}),
      secrets,
      ...(ssh.size ? { ssh } : {}),
      noCache: flagBool(args, "no-cache"),
      noCacheFilter: flagList(args, "no-cache-filter")
        .flatMap((v) => v.split(","))
        .filter((v) => v !== ""),
      cacheFrom,
      cacheTo,
      outputs,
      push: flagBool(args, "push"),
      ...(flagBool(args, "load") ? { load: true, dockerEnv: ctx.io.env } : {}),
      ...(metadataFlag !== undefined ? { metadataFile: metadataFlag === "" ? "" : resolve(ctx.io.cwd, metadataFlag) } : {}),
      pull: flagBool(args, "pull"),
      registry: { insecureRegistries: flagList(args, "insecure-registry"), env: ctx.io.env },
      progress,
      signal: ctx.signal,
    }).finally(async () => {
      // The view is closed also when the build fails, so the error is printed below its last frame.
      await progress.close();
      const chosen = flagBool(args, "debug") ? engine.snapshotter(snapshotter).chosen() : undefined;
      if (chosen) ctx.io.stderr.write(`debug: RUN snapshots: ${chosen}\n`);
      await fetched?.release();
      await named?.release();
    });
    // Several platforms: the image is the index (buildx prints its digest).
    const id = result.platforms ? result.manifest.digest : result.config;
    // With a tar on stdout the id would corrupt it (--iidfile has it); progress and messages are on stderr anyway.
    if (quiet && !outputs.some((o) => o.stream)) ctx.io.stdout.write(`${id}\n`);
    else ctx.io.stderr.write(`writing image ${id} done\n`);
  },
};

/** `dest=-` outputs write into the CLI's stdout: at most one, and never to a terminal (as buildx refuses). */
export function toStdout(outputs: OutputSpec[], io: Pick<CliIO, "stdout" | "stdoutIsTTY">): OutputSpec[] {
  const piped = outputs.filter((o) => o.dest === "-");
  if (piped.length === 0) return outputs;
  if (piped.length > 1) throw new UsageError("BAD_FLAG_VALUE", "--output: only one output can go to standard output (dest=-)");
  if (io.stdoutIsTTY)
    throw new UsageError("BAD_FLAG_VALUE", "--output dest=-: refusing to write a tar to a terminal; redirect stdout or give dest=FILE", {
      hint: "e.g. tsbuild build -o - . > image.tar, or -o type=tar,dest=image.tar",
    });
  return outputs.map((o) => (o.dest === "-" ? { ...o, stream: io.stdout } : o));
}

function contextOptions(ctx: CommandContext, engine: Engine, fileFlag: string | undefined, progress: ProgressSink): MaterializeOptions {
  return {
    scratch: (prefix) => engine.scratch(prefix),
    ...(fileFlag !== undefined ? { dockerfileFlag: fileFlag } : {}),
    stdin: ctx.io.stdin,
    stdinIsTTY: ctx.io.stdinIsTTY,
    env: ctx.io.env,
    signal: ctx.signal,
    onInfo: (message) => progress.emit({ kind: "info", message }),
    onWarning: (message) => progress.emit({ kind: "warning", message }),
  };
}

/** `--label K=V` (repeatable): the last value of a key wins, as in docker. */
export function parseLabels(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0)
      throw new UsageError("BAD_FLAG_VALUE", `--label ${JSON.stringify(v)}: expected KEY=VALUE`, {
        hint: "e.g. --label org.opencontainers.image.source=https://example.com/repo",
      });
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** An IPv4 dotted quad or an IPv6 address (without loading node:net on every start). */
function looksLikeIp(ip: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255);
  return ip.includes(":") && /^[0-9a-fA-F:.]+$/.test(ip) && (ip.match(/::/g) ?? []).length <= 1;
}

/** `--add-host HOST:IP` (or HOST=IP, as buildx also accepts); the IP may be IPv6 (everything after the first separator). */
export function parseAddHost(v: string): { host: string; ip: string } {
  const m = /^([^:=\s]+)[:=](.+)$/.exec(v);
  const host = m?.[1];
  const ip = m?.[2]?.replace(/^\[(.*)\]$/, "$1");
  if (!host || !ip)
    throw new UsageError("BAD_FLAG_VALUE", `--add-host ${JSON.stringify(v)}: expected HOST:IP`, { hint: "e.g. --add-host db.internal:10.1.2.3" });
  if (ip === "host-gateway")
    throw new UsageError("BAD_FLAG_VALUE", "--add-host HOST:host-gateway is not supported: RUN's default network never reaches the host", {
      hint: "give an IP address, or use --network host",
    });
  if (!looksLikeIp(ip)) throw new UsageError("BAD_FLAG_VALUE", `--add-host ${JSON.stringify(v)}: ${JSON.stringify(ip)} is not an IP address`);
  return { host, ip };
}

/** buildx's compression=, compression-level= and force-compression= keys: OCI layouts and pushed images (type=image
 *  with --push) take gzip, zstd or uncompressed; a docker archive's layers are plain tars, so only its defaults. */
function parseOutputCompression(
  spec: string,
  type: OutputSpec["type"],
  kv: Map<string, string>,
): Pick<OutputSpec, "compression" | "compressionLevel" | "forceCompression"> {
  const compression = kv.get("compression") ?? "gzip";
  if (compression !== "gzip" && compression !== "zstd" && compression !== "uncompressed")
    throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: compression must be gzip, zstd or uncompressed`);
  const given = ["compression", "compression-level", "force-compression"].filter((k) => kv.has(k));
  if (given.length > 0 && type !== "oci" && type !== "image")
    throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: ${given.join(", ")} only apply to type=oci and type=image (with --push)`, {
      hint: type === "docker" ? "a docker archive holds its layers as plain tars; use -o type=oci for compressed layers" : "remove the key",
    });
  const force = kv.get("force-compression") ?? "false";
  if (force !== "true" && force !== "false") throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: force-compression must be true or false`);
  const levelText = kv.get("compression-level");
  let level: number | undefined;
  if (levelText !== undefined) {
    if (compression === "uncompressed") throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: compression-level needs compression=gzip or zstd`);
    level = /^\d+$/.test(levelText) ? Number(levelText) : NaN;
    checkLevel(compression, level, `--output ${spec}: compression-level`);
  }
  return {
    ...(kv.has("compression") ? { compression } : {}),
    ...(level !== undefined ? { compressionLevel: level } : {}),
    ...(force === "true" ? { forceCompression: true } : {}),
  };
}

export function parseOutput(spec: string, cwd: string): OutputSpec {
  const example = "e.g. -o type=oci,dest=image.tar, -o type=local,dest=DIR or -o DIR";
  if (spec.trim() === "") throw new UsageError("BAD_FLAG_VALUE", "--output needs a value, not an empty string", { hint: example });
  // buildx: a bare `-` is the image's files as a tar on standard output.
  if (spec === "-") return { type: "tar", dest: "-", tar: true };
  if (!spec.includes("=")) return { type: "local", dest: resolve(cwd, spec), tar: false };
  const kv = parseCsvKeyValues(spec, "--output");
  const keys = ["type", "dest", "tar", "name", "compression", "compression-level", "force-compression"];
  for (const k of kv.keys())
    if (!keys.includes(k)) throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: unknown key ${k}`, { hint: `known keys: ${keys.join(", ")}` });
  const type = kv.get("type");
  if (type === undefined) throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: type= is missing`, { hint: example });
  if (type !== "oci" && type !== "docker" && type !== "local" && type !== "tar" && type !== "image")
    throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: type must be oci, docker, local, tar or image`);
  const dest = kv.get("dest");
  // An empty dest would resolve to the current directory and overwrite files there.
  if (type !== "image" && (dest === undefined || dest.trim() === ""))
    throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: dest=PATH is required for type=${type}${dest === undefined ? "" : " and must not be empty"}`, {
      hint: example,
    });
  const tarText = kv.get("tar") ?? "true";
  if (tarText !== "true" && tarText !== "false") throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: tar must be true or false`);
  const compression = parseOutputCompression(spec, type, kv);
  if (dest === "-" && (type === "local" || tarText === "false"))
    throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: a directory cannot be written to standard output`, {
      hint: "dest=- takes type=tar (the files as one tar), type=docker or type=oci",
    });
  const names = kv.get("name") ? (kv.get("name") as string).split(/[;+]/) : undefined;
  // A bad name fails now, not after the build.
  for (const n of names ?? []) parseReference(n);
  return {
    type,
    dest: dest === "-" ? "-" : dest ? resolve(cwd, dest) : "",
    tar: type === "local" ? false : type === "tar" ? true : tarText === "true",
    ...compression,
    ...(names ? { names } : {}),
  };
}
