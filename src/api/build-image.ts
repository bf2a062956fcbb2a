// The whole `tsbuild build` pipeline as one library call: open the imported caches, build under the store lock,
// export caches, push, write the metadata file and the outputs. The CLI only parses flags and renders progress.
import { resolve } from "node:path";
import { AbortError, isTsbuildError, UsageError } from "../errors.js";
import type { Engine } from "../engine.js";
import type { Descriptor, Digest, ImageConfig } from "../image/types.js";
import { annotationsFor, type Annotation } from "../image/annotations.js";
import { configPlatform } from "../image/platform.js";
import { familiarName } from "../image/reference.js";
import { formatPlatform } from "../image/platform.js";
import type { ProgressSink } from "../progress/events.js";
import { runBuild, type BuildOptions, type BuildResult } from "../solver/build.js";
import type { CacheFromSpec, CacheToSpec } from "../cache/cache-spec.js";
import type { CacheSource } from "../cache/cache-source.js";
import { cacheConfigFor, exportedCacheMounts, type CacheExportMode } from "../cache/cache-export.js";
import { archiveCacheMounts } from "../cache/cache-mounts.js";
import { checkLocalCacheTarget, openLocalCacheSource, writeLocalCache } from "../cache/local-cache.js";
import type { RegistryOptions } from "../registry/client.js";
import { checkOutput, exportOutputs, type OutputSpec } from "../exporter/outputs.js";
import { findDockerEngine, loadIntoDocker } from "../exporter/docker-load.js";
import { checkOutputDir, checkOutputFile, writeOutputFile } from "../store/output-file.js";
import { describeOutputDirError } from "../store/fs-error.js";
import { acquireBuildLock } from "../store/locks.js";
import type { ContextOrigin } from "../context/materialize-context.js";

export interface BuildImageOptions extends Omit<BuildOptions, "cacheFrom" | "progress"> {
  /** Where the built image goes besides the store (`-o`): OCI layout, docker-archive, local rootfs dir, more names. */
  outputs?: OutputSpec[];
  /** Push the image to the registry of every tag after building (needs at least one tag). */
  push?: boolean;
  /** Caches to import; one that does not exist yet or cannot be read is a warning, never a failed build. */
  cacheFrom?: CacheFromSpec[];
  /** Caches to export after the build. */
  cacheTo?: CacheToSpec[];
  /** Write BuildKit's metadata JSON (image digest, config digest, per-step cache results) to this file. */
  metadataFile?: string;
  /** A file to write the image id (its config digest) to, as docker build --iidfile does. */
  iidFile?: string;
  /** Hand the image to a running Docker engine with `docker load` (buildx's --load); checked before the build. */
  load?: boolean;
  /** The environment `docker` runs with (PATH, DOCKER_HOST); default process.env. */
  dockerEnv?: NodeJS.ProcessEnv;
  /** This build's progress sink (default: the engine's). */
  progress?: ProgressSink;
  /** Where a fetched context came from (materializeContext's origin): written to the metadata file as "tsbuild.context". */
  contextOrigin?: ContextOrigin;
}

/** The metadata file's document: BuildKit's keys for the image, plus tsbuild's per-step cache results. */
export interface BuildMetadata {
  "containerimage.digest": Digest;
  /** Absent for a multi-platform build (its image is an index; each platform's config is in tsbuild.platforms). */
  "containerimage.config.digest"?: Digest;
  "containerimage.descriptor": Descriptor;
  "image.name"?: string;
  /** A context from stdin, git (with the commit its ref resolved to) or a URL (with the sha256 of what was served). */
  "tsbuild.context"?: ContextOrigin;
  "tsbuild.cache": {
    hits: number;
    misses: number;
    steps: { name: string; cached: boolean; durationMs: number; key: string; reasons?: string[]; platform?: string; shared?: boolean }[];
    contextFiles: { cached: number; hashed: number; bytes: number };
  };
  /** A multi-platform build's images, one per platform. */
  "tsbuild.platforms"?: { platform: string; "containerimage.digest": Digest; "containerimage.config.digest": Digest }[];
}

export interface BuildImageResult extends BuildResult {
  /** One entry per tag pushed: the normalised name and the manifest digest the registry holds. */
  pushed: { name: string; digest: Digest; size: number }[];
  /** The caches written, in the order of `cacheTo`. */
  /** `mounts`: the cache mounts the written cache carries (cache-mounts=true). */
  cacheExports: { to: CacheToSpec; records: number; mounts: number; blobs: number; uploaded?: number }[];
  /** What each output wrote (the OCI index descriptor for oci, the manifest otherwise). */
  outputs: { spec: OutputSpec; descriptor?: Descriptor }[];
  /** The document written to `metadataFile` (also returned when no file was asked for). */
  metadata: BuildMetadata;
}

/**
 * Build an image and do everything after it that `tsbuild build` does. Destinations that cannot be written fail
 * before the build starts; the store's shared lock is held from before the build until the last output is written,
 * so a prune cannot take an untagged result or the blobs being pushed.
 */
export async function buildImage(engine: Engine, opts: BuildImageOptions): Promise<BuildImageResult> {
  const progress = opts.progress ?? engine.progress;
  const { signal } = opts;
  const outputs = opts.outputs ?? [];
  const cacheTo = opts.cacheTo ?? [];
  const registry: RegistryOptions = opts.registry ?? {};
  if (opts.push && (opts.tags ?? []).length === 0)
    throw new UsageError("BAD_ARGS", "--push needs at least one -t NAME to push to", {
      hint: "e.g. tsbuild build --push -t registry.example.com/team/app:1.0 .",
    });
  if (opts.metadataFile === "") throw new UsageError("BAD_FLAG_VALUE", "--metadata-file needs a file name, not an empty string");
  const metadataFile = opts.metadataFile === undefined ? undefined : resolve(opts.metadataFile);
  // Outputs that cannot be written fail now, not after a long build.
  if (metadataFile !== undefined) await checkOutputFile(metadataFile, { what: "--metadata-file" });
  if (opts.iidFile === "") throw new UsageError("BAD_FLAG_VALUE", "--iidfile needs a file name, not an empty string");
  const iidFile = opts.iidFile === undefined ? undefined : resolve(opts.iidFile);
  if (iidFile !== undefined) await checkOutputFile(iidFile, { what: "--iidfile" });
  const layoutAnnotated = (opts.annotations ?? []).filter((a) => a.target !== "manifest");
  if (layoutAnnotated.length > 0 && !outputs.some((o) => o.type === "oci"))
    throw new UsageError("BAD_FLAG_VALUE", `--annotation ${layoutAnnotated[0]?.target}:…: only an OCI layout output has an index for it`, {
      hint: "add -o type=oci,dest=FILE, or annotate the manifest (--annotation KEY=VALUE); a single-platform image pushed or saved has no index",
    });
  for (const out of outputs) await checkOutput(out);
  if ((opts.platforms?.length ?? 0) > 1)
    for (const out of outputs)
      if (out.type === "docker")
        throw new UsageError("MULTI_PLATFORM_OUTPUT", `--output type=docker holds one platform, but --platform names ${opts.platforms?.length}`, {
          hint: "use -o type=oci for every platform, or build one platform with --platform OS/ARCH",
        });
  const docker = opts.load ? await findDockerEngine(opts.dockerEnv ?? process.env) : undefined;
  for (const to of cacheTo)
    if (to.type === "local") await checkOutputDir(to.dest, { what: "--cache-to type=local dest" }).then(() => checkLocalCacheTarget(to.dest, to.tag));

  const lock = await acquireBuildLock(engine.root, signal);
  try {
    const sources = await openCacheSources(opts.cacheFrom ?? [], progress, registry, signal);
    const { outputs: _o, push: _p, cacheTo: _c, metadataFile: _m, iidFile: _i, load: _l, dockerEnv: _d, contextOrigin, ...buildOpts } = opts;
    const result = await runBuild(engine, { ...buildOpts, cacheFrom: sources, progress }, { lockHeld: true }).finally(() => {
      for (const src of sources) src.close?.();
    });
    const cacheExports: BuildImageResult["cacheExports"] = [];
    for (const to of cacheTo) cacheExports.push(await exportCache(engine, result, to, progress, registry, signal));
    const pushed: BuildImageResult["pushed"] = [];
    if (opts.push) {
      const { pushImageLocked } = await import("../registry/push.js");
      // -o type=image,compression=…: how --push compresses the layers, as buildx's image exporter.
      const img = outputs.find((o) => o.type === "image" && (o.compression !== undefined || o.compressionLevel !== undefined || o.forceCompression));
      const compression = img
        ? {
            compression: img.compression ?? "gzip",
            ...(img.compressionLevel !== undefined ? { level: img.compressionLevel } : {}),
            ...(img.forceCompression ? { force: true } : {}),
          }
        : undefined;
      for (const t of result.tags) {
        const r = await pushImageLocked(engine, t, t, { ...registry, ...(signal ? { signal } : {}), progress, ...(compression ? { compression } : {}) });
        pushed.push({ name: t, digest: r.digest, size: r.size });
        progress.emit({ kind: "info", message: `pushed ${familiarName(t)}@${r.digest}` });
      }
    }
    const metadata = buildMetadata(result, contextOrigin);
    if (metadataFile !== undefined) await writeOutputFile(metadataFile, JSON.stringify(metadata, null, 2) + "\n", { what: "--metadata-file" });
    // docker writes the id without a newline; for several platforms buildx writes the index's digest.
    if (iidFile !== undefined) await writeOutputFile(iidFile, result.platforms ? result.manifest.digest : result.config, { what: "--iidfile" });
    const written: BuildImageResult["outputs"] = [];
    const layout = layoutAnnotated.length > 0 ? await layoutAnnotations(engine, result, layoutAnnotated) : undefined;
    for (const out of outputs) {
      const descriptor = await exportOutputs(engine, result, out.type === "oci" && layout ? { ...out, annotations: layout } : out, signal, progress);
      written.push({ spec: out, ...(descriptor ? { descriptor } : {}) });
      if (descriptor) progress.emit({ kind: "info", message: `exported ${out.type} to ${out.dest}` });
    }
    if (docker) {
      const said = await loadIntoDocker(docker, engine.content, { names: result.tags.map(familiarName), manifest: result.manifest }, signal);
      progress.emit({ kind: "info", message: `loaded into docker (${docker.host})${said ? `: ${said}` : ""}` });
    }
    for (const t of result.tags) progress.emit({ kind: "info", message: `naming to ${familiarName(t)} done` });
    return { ...result, pushed, cacheExports, outputs: written, metadata };
  } finally {
    await lock.release();
  }
}

/** The index.json annotations of an OCI layout: index ones on the index, descriptor ones on the image's entry (a
 *  single-platform layout's root descriptor is the manifest's, so index-descriptor and manifest-descriptor meet). */
async function layoutAnnotations(engine: Engine, result: BuildResult, list: Annotation[]): Promise<NonNullable<OutputSpec["annotations"]>> {
  const platform = configPlatform(await engine.content.readJson<ImageConfig>(result.config));
  const index = annotationsFor(list, "index", platform);
  const descriptor = { ...annotationsFor(list, "index-descriptor", platform), ...annotationsFor(list, "manifest-descriptor", platform) };
  return { ...(index ? { index } : {}), ...(Object.keys(descriptor).length ? { descriptor } : {}) };
}

function where(spec: CacheFromSpec): string {
  return spec.type === "local" ? `type=local,src=${spec.src}` : `type=registry,ref=${spec.ref}`;
}

async function openCacheSources(
  specs: CacheFromSpec[],
  progress: ProgressSink,
  registry: RegistryOptions,
  signal: AbortSignal | undefined,
): Promise<(CacheSource & { close?(): void })[]> {
  const out: (CacheSource & { close?(): void })[] = [];
  try {
    for (const spec of specs) {
      let source: (CacheSource & { close?(): void }) | undefined;
      try {
        if (spec.type === "local") source = await openLocalCacheSource(spec.src, spec.tag);
        else {
          const { openRegistryCacheSource } = await import("../cache/registry-cache.js");
          source = await openRegistryCacheSource(spec.ref, { ...registry, ...(signal ? { signal } : {}) });
        }
      } catch (e) {
        // As BuildKit: a cache that cannot be imported (foreign, damaged, access denied) is a warning, never silent,
        // and never fails the build. Cancellation and bugs still do.
        if (signal?.aborted || e instanceof AbortError || !isTsbuildError(e)) throw e;
        progress.emit({
          kind: "warning",
          message: `--cache-from ${where(spec)}: cannot import the cache: ${e.message}${e.hint ? ` (${e.hint})` : ""}; building without it`,
        });
        continue;
      }
      // As BuildKit: a cache that does not exist yet is a warning (the first CI run has none), not an error.
      if (source) out.push(source);
      else progress.emit({ kind: "warning", message: `--cache-from ${where(spec)}: no cache there yet; building without it` });
    }
  } catch (e) {
    for (const src of out) src.close?.();
    throw e;
  }
  return out;
}

async function exportCache(
  engine: Engine,
  result: BuildResult,
  to: CacheToSpec,
  progress: ProgressSink,
  registry: RegistryOptions,
  signal: AbortSignal | undefined,
): Promise<BuildImageResult["cacheExports"][number]> {
  const mode: CacheExportMode = to.mode ?? "min";
  const mounts = to.cacheMounts
    ? await archiveCacheMounts(engine.root, engine.content, exportedCacheMounts(result, mode), {
        signal: signal ?? new AbortController().signal,
        onSkip: (id, path, why) => progress.emit({ kind: "warning", message: `cache mount ${JSON.stringify(id)}: ${path} is not exported: ${why}` }),
        onError: (id, message) => progress.emit({ kind: "warning", message: `cache mount ${JSON.stringify(id)} is not exported: ${message}` }),
      })
    : [];
  const cfg = await cacheConfigFor(engine.content, result, mode, mounts);
  const carried = (n: number) => (to.cacheMounts ? `, ${n} cache mount${n === 1 ? "" : "s"}` : "");
  if (to.type === "local") {
    const dest = to.dest;
    const r = await writeLocalCache(dest, engine.content, cfg, signal, to.tag).catch((e: unknown) =>
      Promise.reject(describeOutputDirError(e, dest, "--cache-to type=local dest")),
    );
    progress.emit({ kind: "info", message: `exported cache to ${to.dest} (${r.records} records${carried(r.mounts)}, ${r.blobs} blobs, mode=${mode})` });
    return { to, records: r.records, mounts: r.mounts, blobs: r.blobs };
  }
  const { writeRegistryCache } = await import("../cache/registry-cache.js");
  const r = await writeRegistryCache(to.ref, engine.content, cfg, { ...registry, ...(signal ? { signal } : {}) });
  progress.emit({
    kind: "info",
    message: `exported cache to ${to.ref} (${r.records} records${carried(r.mounts)}, ${r.blobs} blobs, ${r.uploaded} uploaded, mode=${mode})`,
  });
  return { to, records: r.records, mounts: r.mounts, blobs: r.blobs, uploaded: r.uploaded };
}

/** BuildKit's metadata keys for the image, plus tsbuild's per-step cache results. */
export function buildMetadata(result: BuildResult, contextOrigin?: ContextOrigin): BuildMetadata {
  return {
    "containerimage.digest": result.manifest.digest,
    ...(result.platforms ? {} : { "containerimage.config.digest": result.config }),
    "containerimage.descriptor": result.manifest,
    ...(result.tags.length ? { "image.name": result.tags.join(",") } : {}),
    ...(contextOrigin ? { "tsbuild.context": contextOrigin } : {}),
    "tsbuild.cache": {
      hits: result.cache.hits,
      misses: result.cache.misses,
      steps: result.cache.steps.map((s) => ({
        name: s.name,
        cached: s.cached,
        durationMs: s.durationMs,
        key: s.key,
        ...(s.cached ? {} : { reasons: s.reasons }),
        ...(s.platform ? { platform: s.platform } : {}),
        ...(s.shared ? { shared: true } : {}),
      })),
      contextFiles: result.cache.contextFiles,
    },
    ...(result.platforms
      ? {
          "tsbuild.platforms": result.platforms.map((p) => ({
            platform: formatPlatform(p.platform),
            "containerimage.digest": p.manifest.digest,
            "containerimage.config.digest": p.config,
          })),
        }
      : {}),
  };
}
