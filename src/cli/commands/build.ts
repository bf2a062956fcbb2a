// `tsbuild build [flags] CONTEXT`: parse flags, run the library build, render progress, export outputs.
import { resolve } from "node:path";
import { AbortError, isTsbuildError, UsageError } from "../../errors.js";
import { flagBool, flagList, flagString, parseArgs, parseCsvKeyValues } from "../args.js";
import { locateDockerfile } from "../../context/locate-dockerfile.js";
import { parseBuildArgs, readDockerfileFromStdin, storeRootFlag } from "../inputs.js";
import { GLOBAL_FLAGS, type Command, type CommandContext } from "../context.js";
import { openEngine, type Engine } from "../../engine.js";
import { parseCacheFrom, parseCacheTo, type CacheFromSpec, type CacheToSpec } from "../cache-flags.js";
import { checkLocalCacheTarget, openLocalCacheSource, writeLocalCache } from "../../cache/local-cache.js";
import { cacheConfigFor } from "../../cache/cache-export.js";
import type { CacheSource } from "../../cache/cache-source.js";
import type { RegistryOptions } from "../../registry/client.js";
import { build, type BuildResult } from "../../solver/build.js";
import { checkOutputDir, checkOutputFile, writeOutputFile } from "../../store/output-file.js";
import { describeOutputDirError } from "../../store/fs-error.js";
import { acquireBuildLock } from "../../store/locks.js";
import { parseSecretFlag } from "../../solver/mount-spec.js";
import { checkOutput, exportOutputs, type OutputSpec } from "../../exporter/outputs.js";
import { familiarName, parseReference } from "../../image/reference.js";
import { jsonRenderer, plainRenderer, quietRenderer } from "../../progress/renderers.js";
import type { ProgressSink } from "../../progress/events.js";

export const buildCommand: Command = {
  name: "build",
  usage: "tsbuild build [flags] CONTEXT",
  summary: "Build an image from a Dockerfile and a context directory.",
  flags: [
    { name: "tag", short: "t", type: "list", value: "NAME[:TAG]", help: "name the image (repeatable)" },
    { name: "file", short: "f", type: "string", value: "PATH", help: "Dockerfile to use (default CONTEXT/Dockerfile; - reads stdin)" },
    { name: "build-arg", type: "list", value: "KEY=VALUE", help: "set a build argument (repeatable); KEY alone takes it from the environment" },
    { name: "target", type: "string", value: "STAGE", help: "build this stage and the stages it needs" },
    { name: "output", short: "o", type: "list", value: "SPEC", help: "type=oci|docker|local|image,dest=PATH[,tar=false] (repeatable)" },
    { name: "progress", type: "string", value: "MODE", help: "auto, plain, json or quiet" },
    { name: "quiet", short: "q", type: "boolean", help: "print only the image id" },
    { name: "no-cache", type: "boolean", help: "run every step; use no cached result (results are still cached for later builds)" },
    { name: "no-cache-filter", type: "list", value: "STAGE", help: "run the steps of these stages without the cache (repeatable, or comma-separated)" },
    { name: "explain-cache", type: "boolean", help: "say for every step that missed the cache which input changed since its last build" },
    { name: "pull", type: "boolean", help: "pull base images from their registry even when the store has them" },
    { name: "push", type: "boolean", help: "push the image to the registry of each -t name after building" },
    { name: "insecure-registry", type: "list", value: "HOST", help: "speak plain HTTP to this registry (loopback always is); repeatable" },
    { name: "cache-from", type: "list", value: "SPEC", help: "import cache: type=local,src=DIR[,tag=T] or type=registry,ref=REF (repeatable)" },
    { name: "cache-to", type: "list", value: "SPEC", help: "export cache: type=local,dest=DIR[,tag=T] or type=registry,ref=REF, with mode=min (default) or max" },
    { name: "metadata-file", type: "string", value: "FILE", help: "write the image digest, config digest and per-step cache results as JSON" },
    { name: "jobs", type: "string", value: "N", help: "stages built in parallel (default: cores)" },
    { name: "check", type: "boolean", help: "run the build checks only, without building (like `tsbuild check`)" },
    { name: "secret", type: "list", value: "id=ID,src=PATH|env=VAR", help: "a secret for RUN --mount=type=secret (repeatable)" },
    { name: "executor", type: "string", value: "NAME", help: "RUN sandbox: auto, crun, runc or bwrap" },
    { name: "snapshotter", type: "string", value: "NAME", help: "RUN snapshots: auto, overlay or copy" },
    { name: "allow", type: "list", value: "ENTITLEMENT", help: "grant an entitlement: network.host (RUN --network=host shares the host's network)" },
    { name: "pids-limit", type: "string", value: "N", help: "most processes one RUN may have at once (default 1024)" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx: CommandContext) {
    const args = parseArgs(ctx.argv, this.flags, "build");
    if (args.positionals.length !== 1)
      throw new UsageError("BAD_ARGS", `\`tsbuild build\` takes exactly one context directory, got ${args.positionals.length}`, { hint: "e.g. `tsbuild build -t name .`" });
    const contextDir = resolve(ctx.io.cwd, args.positionals[0] as string);
    if (flagBool(args, "check")) {
      const { checkCommand } = await import("./check.js");
      const file = flagString(args, "file");
      return checkCommand.run({
        ...ctx,
        argv: [...(file ? ["-f", file] : []), ...flagList(args, "build-arg").flatMap((a) => ["--build-arg", a]), args.positionals[0] as string],
      });
    }
    const buildArgs = parseBuildArgs(flagList(args, "build-arg"), ctx.io.env);
    const jobsText = flagString(args, "jobs");
    const jobs = jobsText === undefined ? undefined : Number(jobsText);
    if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1)) throw new UsageError("BAD_FLAG_VALUE", `--jobs takes a positive whole number, not ${JSON.stringify(jobsText)}`);
    const outputs = flagList(args, "output").map((o) => parseOutput(o, ctx.io.cwd));
    const quiet = flagBool(args, "quiet");
    const mode = quiet ? "quiet" : flagString(args, "progress") ?? "auto";
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
    const allow = flagList(args, "allow").flatMap((v) => v.split(",")).filter((v) => v !== "");
    for (const a of allow)
      if (a !== "network.host")
        throw new UsageError("BAD_FLAG_VALUE", `--allow ${a}: unknown entitlement`, {
          hint: a === "security.insecure" ? "RUN --security=insecure is not supported yet" : "the entitlement tsbuild knows is network.host",
        });
    const pidsText = flagString(args, "pids-limit");
    const pidsLimit = pidsText === undefined ? undefined : Number(pidsText);
    if (pidsLimit !== undefined && (!/^\d+$/.test(pidsText as string) || pidsLimit < 16 || pidsLimit > 4194304))
      throw new UsageError("BAD_FLAG_VALUE", `--pids-limit takes a whole number from 16 to 4194304, not ${JSON.stringify(pidsText)}`);
    const snapshotter = flagString(args, "snapshotter") ?? "auto";
    if (snapshotter !== "auto" && snapshotter !== "overlay" && snapshotter !== "copy")
      throw new UsageError("BAD_FLAG_VALUE", `--snapshotter takes auto, overlay or copy, not ${JSON.stringify(snapshotter)}`);
    const epochText = ctx.io.env.SOURCE_DATE_EPOCH;
    if (epochText !== undefined && epochText !== "" && !/^\d+$/.test(epochText))
      throw new UsageError("BAD_ENV", `SOURCE_DATE_EPOCH must be a whole number of seconds, not ${JSON.stringify(epochText)}`);
    const cacheFrom = flagList(args, "cache-from").map((v) => parseCacheFrom(v, ctx.io.cwd));
    const cacheTo = flagList(args, "cache-to").map((v) => parseCacheTo(v, ctx.io.cwd));
    const fileFlag = flagString(args, "file");
    const loc = locateDockerfile(ctx.io.cwd, fileFlag === "-" ? undefined : fileFlag, args.positionals[0]);
    const push = flagBool(args, "push");
    if (push && flagList(args, "tag").length === 0) throw new UsageError("BAD_ARGS", "--push needs at least one -t NAME to push to", { hint: "e.g. tsbuild build --push -t registry.example.com/team/app:1.0 ." });
    const registry: RegistryOptions = { insecureRegistries: flagList(args, "insecure-registry"), env: ctx.io.env };
    const metadataFlag = flagString(args, "metadata-file");
    if (metadataFlag === "") throw new UsageError("BAD_FLAG_VALUE", "--metadata-file needs a file name, not an empty string");
    const metadataFile = metadataFlag === undefined ? undefined : resolve(ctx.io.cwd, metadataFlag);
    // Outputs that cannot be written fail now, not after a long build.
    if (metadataFile !== undefined) await checkOutputFile(metadataFile, { what: "--metadata-file" });
    for (const out of outputs) await checkOutput(out);
    for (const to of cacheTo) if (to.type === "local") await checkOutputDir(to.dest, { what: "--cache-to type=local dest" }).then(() => checkLocalCacheTarget(to.dest, to.tag));
    const engine = openEngine({ root: await storeRootFlag(args), progress });
    // The shared store lock over the build and everything after it (push, cache export, outputs): a prune cannot
    // take the blobs of an untagged result or of a pushed image while they are read.
    const lock = await acquireBuildLock(engine.root, ctx.signal);
    try {
      const sources = await openCacheSources(cacheFrom, progress, registry, ctx.signal);
      const result = await build(engine, {
        contextDir,
        ...(fileFlag === "-" ? { dockerfileText: await readDockerfileFromStdin(process.stdin, ctx.signal), dockerfileDisplayName: "<stdin>" } : { dockerfile: loc.path, dockerfileDisplayName: loc.display }),
        ...(epochText ? { sourceDateEpoch: Number(epochText) } : {}),
        tags: flagList(args, "tag"),
        buildArgs,
        ...(flagString(args, "target") !== undefined ? { target: flagString(args, "target") as string } : {}),
        ...(jobs !== undefined ? { jobs } : {}),
        executor,
        snapshotter,
        allow,
        ...(pidsLimit !== undefined ? { pidsLimit } : {}),
        secrets: new Map(flagList(args, "secret").map((v) => parseSecretFlag(v, ctx.io.env))),
        noCache: flagBool(args, "no-cache"),
        noCacheFilter: flagList(args, "no-cache-filter").flatMap((v) => v.split(",")).filter((v) => v !== ""),
        cacheFrom: sources,
        pull: flagBool(args, "pull"),
        registry,
        signal: ctx.signal,
      }).finally(() => {
        for (const src of sources) src.close?.();
      });
      for (const to of cacheTo) await exportCache(engine, result, to, progress, registry, ctx.signal);
      if (push) {
        const { pushImage } = await import("../../registry/push.js");
        for (const t of result.tags) {
          const pushed = await pushImage(engine, t, t, { ...registry, signal: ctx.signal, progress });
          progress.emit({ kind: "info", message: `pushed ${familiarName(t)}@${pushed.digest}` });
        }
      }
      if (metadataFile !== undefined) await writeMetadata(metadataFile, result);
      for (const out of outputs) {
        const desc = await exportOutputs(engine, result, out, ctx.signal);
        if (desc) progress.emit({ kind: "info", message: `exported ${out.type} to ${out.dest}` });
      }
      for (const t of result.tags) progress.emit({ kind: "info", message: `naming to ${familiarName(t)} done` });
      await progress.close();
      if (quiet) ctx.io.stdout.write(`${result.config}\n`);
      else ctx.io.stderr.write(`writing image ${result.config} done\n`);
    } finally {
      await lock.release();
    }
  },
};

async function openCacheSources(specs: CacheFromSpec[], progress: ProgressSink, registry: RegistryOptions, signal: AbortSignal): Promise<(CacheSource & { close?(): void })[]> {
  const out: (CacheSource & { close?(): void })[] = [];
  for (const spec of specs) {
    const where = spec.type === "local" ? `type=local,src=${spec.src}` : `type=registry,ref=${spec.ref}`;
    let source: (CacheSource & { close?(): void }) | undefined;
    try {
      if (spec.type === "local") source = await openLocalCacheSource(spec.src, spec.tag);
      else {
        const { openRegistryCacheSource } = await import("../../cache/registry-cache.js");
        source = await openRegistryCacheSource(spec.ref, { ...registry, signal });
      }
    } catch (e) {
      // As BuildKit: a cache that cannot be imported (foreign, damaged, access denied) is a warning, never silent,
      // and never fails the build. Cancellation and bugs still do.
      if (signal.aborted || e instanceof AbortError || !isTsbuildError(e)) throw e;
      progress.emit({ kind: "warning", message: `--cache-from ${where}: cannot import the cache: ${e.message}${e.hint ? ` (${e.hint})` : ""}; building without it` });
      continue;
    }
    // As BuildKit: a cache that does not exist yet is a warning (the first CI run has none), not an error.
    if (source) out.push(source);
    else progress.emit({ kind: "warning", message: `--cache-from ${where}: no cache there yet; building without it` });
  }
  return out;
}

async function exportCache(engine: Engine, result: BuildResult, to: CacheToSpec, progress: ProgressSink, registry: RegistryOptions, signal: AbortSignal): Promise<void> {
  const cfg = await cacheConfigFor(engine.content, result, to.mode);
  if (to.type === "local") {
    const dest = to.dest;
    const r = await writeLocalCache(dest, engine.content, cfg, signal, to.tag).catch((e: unknown) => Promise.reject(describeOutputDirError(e, dest, "--cache-to type=local dest")));
    progress.emit({ kind: "info", message: `exported cache to ${to.dest} (${r.records} records, ${r.blobs} blobs, mode=${to.mode})` });
  } else {
    const { writeRegistryCache } = await import("../../cache/registry-cache.js");
    const r = await writeRegistryCache(to.ref, engine.content, cfg, { ...registry, signal });
    progress.emit({ kind: "info", message: `exported cache to ${to.ref} (${r.records} records, ${r.blobs} blobs, ${r.uploaded} uploaded, mode=${to.mode})` });
  }
}

/** BuildKit's metadata keys for the image, plus tsbuild's per-step cache results. */
async function writeMetadata(file: string, result: BuildResult): Promise<void> {
  const doc = {
    "containerimage.digest": result.manifest.digest,
    "containerimage.config.digest": result.config,
    "containerimage.descriptor": result.manifest,
    ...(result.tags.length ? { "image.name": result.tags.join(",") } : {}),
    "tsbuild.cache": {
      hits: result.cache.hits,
      misses: result.cache.misses,
      steps: result.cache.steps.map((s) => ({ name: s.name, cached: s.cached, durationMs: s.durationMs, key: s.key, ...(s.cached ? {} : { reasons: s.reasons }) })),
      contextFiles: result.cache.contextFiles,
    },
  };
  await writeOutputFile(file, JSON.stringify(doc, null, 2) + "\n", { what: "--metadata-file" });
}

export function parseOutput(spec: string, cwd: string): OutputSpec {
  const example = "e.g. -o type=oci,dest=image.tar, -o type=local,dest=DIR or -o DIR";
  if (spec.trim() === "") throw new UsageError("BAD_FLAG_VALUE", "--output needs a value, not an empty string", { hint: example });
  if (spec === "-") throw new UsageError("BAD_FLAG_VALUE", "--output -: writing to standard output needs a type", { hint: "e.g. -o type=docker,dest=/dev/stdout" });
  if (!spec.includes("=")) return { type: "local", dest: resolve(cwd, spec), tar: false };
  const kv = parseCsvKeyValues(spec, "--output");
  for (const k of kv.keys())
    if (!["type", "dest", "tar", "name", "compression"].includes(k)) throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: unknown key ${k}`, { hint: "known keys: type, dest, tar, name, compression" });
  const type = kv.get("type");
  if (type === undefined) throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: type= is missing`, { hint: example });
  if (type !== "oci" && type !== "docker" && type !== "local" && type !== "image")
    throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: type must be oci, docker, local or image`);
  const dest = kv.get("dest");
  // An empty dest would resolve to the current directory and overwrite files there.
  if (type !== "image" && (dest === undefined || dest.trim() === ""))
    throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: dest=PATH is required for type=${type}${dest === undefined ? "" : " and must not be empty"}`, { hint: example });
  const tarText = kv.get("tar") ?? "true";
  if (tarText !== "true" && tarText !== "false") throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: tar must be true or false`);
  const compression = kv.get("compression") ?? "gzip";
  if (compression !== "gzip" && compression !== "uncompressed") throw new UsageError("BAD_FLAG_VALUE", `--output ${spec}: compression must be gzip or uncompressed`);
  const names = kv.get("name") ? (kv.get("name") as string).split(/[;+]/) : undefined;
  // A bad name fails now, not after the build.
  for (const n of names ?? []) parseReference(n);
  return {
    type,
    dest: dest ? resolve(cwd, dest) : "",
    tar: type === "local" ? false : tarText === "true",
    compression,
    ...(names ? { names } : {}),
  };
}
