// FROM and COPY --from=<image>: base images looked up in the store (or pulled) once per build, the stage's starting
// state (config, layers, first cache key), and an image's rootfs for COPY --from.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { BuildError, StoreError, TsbuildError, throwIfAborted, attachRange } from "../errors.js";
import type { SourceRange, Stage } from "../frontend/types.js";
import { type ImageConfig, type Digest, type Manifest, type Platform } from "../image/types.js";
import { formatPlatform, hostPlatform, samePlatform } from "../image/platform.js";
import type { Hasher } from "../util/hasher.js";
import { extractStoredLayers } from "../layer/extract-stored.js";
import { imageConfigProblem } from "../image/config-check.js";
import { DEFAULT_PATH, getEnv, setEnv, type LayerRef, type StageState } from "./stage-state.js";
import { findImage } from "./image-writer.js";
import { stageHint } from "../frontend/plan.js";
import { cacheKey } from "../cache/keys.js";
import { ensureSnapshot } from "../snapshot/rootfs-snapshots.js";
import { nodePrefix, stagePrefix, type BuildSession } from "./build-session.js";
import { stepNumbers } from "./step-numbers.js";
import { contextBaseState } from "./context-base.js";
import { isOciLayoutRef, parseOciLayoutRef } from "../image/oci-layout-ref.js";
import { readOciLayoutImage } from "../exporter/oci-layout-read.js";

/** The platform a stage is built for: its FROM --platform (e.g. $BUILDPLATFORM), else the build's target. */
export function stagePlatform(run: BuildSession, stage: Stage): Platform {
  return run.plan.stages[stage.index]?.platform ?? run.platform;
}

/** The image config's platform fields for `p` (variant only when there is one). */
function setConfigPlatform(config: ImageConfig, p: Platform): void {
  config.architecture = p.architecture;
  config.os = p.os;
  if (p.variant) config.variant = p.variant;
  else delete config.variant;
}

export function emptyConfig(run: BuildSession, platform: Platform = run.platform): ImageConfig {
  return {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    // BuildKit's image for FROM scratch: PATH and WorkingDir "/".
    config: { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: "/" },
    rootfs: { type: "layers", diff_ids: [] },
    history: [],
  };
}

export async function prepareBase(run: BuildSession, stage: Stage, baseName: string, baseStage: Stage | undefined): Promise<StageState> {
  const node = `${nodePrefix(run)}stage-${stage.index}-from`;
  const planned = run.plan.stages[stage.index];
  const total = planned ? stepNumbers(planned).total : stage.instructions.length + 1;
  const label = `[${stagePrefix(run, stage)}1/${total}] FROM ${baseName}`;
  const started = Date.now();
  run.progress.emit({ kind: "step-start", node, name: label, range: stage.from.range, cached: false });
  let state: StageState;
  const target = stagePlatform(run, stage);
  const platform = formatPlatform(target);
  // The filesystem is not unpacked here: the first step that must run (or a stage reading this one) does it.
  if (baseStage) {
    const base = await run.stages.result(baseStage);
    state = { config: structuredClone(base.state.config), layers: [...base.state.layers], args: new Map(), cmdSet: false, key: base.state.key };
  } else if (planned?.base.kind === "context") {
    // FROM a directory gets FROM scratch's config; a stage the directory replaces gets none (dockerfile2llb: a
    // dispatched named context without an image keeps the zero image: no PATH, no WorkingDir).
    const config = planned.replacedBy !== undefined ? { ...emptyConfig(run, target), config: {} } : emptyConfig(run, target);
    state = await contextBaseState(run, stage, planned.base.name, config, target);
  } else if (baseName.toLowerCase() === "scratch") {
    state = {
      config: emptyConfig(run, target),
      layers: [],
      args: new Map(),
      cmdSet: false,
      key: cacheKey(run.hasher, undefined, { base: "scratch", platform }).digest,
    };
  } else {
    const image = await resolveImage(run, baseName, stage.from.range, target, stage);
    // A stored config may predate load's checks (or the store was edited): its field types are checked before use.
    const problem = imageConfigProblem(image.config);
    if (problem)
      throw new StoreError("BAD_CONFIG", `the config of base image ${baseName} (${image.id}) is malformed: ${problem}`, {
        range: stage.from.range,
        hint: "remove the image (`tsbuild rmi`) and load or pull it again",
      });
    const config = structuredClone(image.config);
    config.history ??= [];
    config.config ??= {};
    if (getEnv(config, "PATH") === undefined) config.config.Env = setEnv(config.config.Env, "PATH", DEFAULT_PATH);
    state = { config, layers: [...image.layers], args: new Map(), cmdSet: false, key: baseKey(run, image.id, target) };
  }
  // The new image gets its stage's platform and this build's creation time; its history and layers carry over.
  if (!baseStage) setConfigPlatform(state.config, target);
  delete state.config.created;
  run.progress.emit({ kind: "step-end", node, durationMs: Date.now() - started });
  return state;
}

/**
 * The first key of a chain that starts FROM an image: its id (config digest) on the stage's platform. The stage's,
 * not the build's target: a FROM --platform=$BUILDPLATFORM stage has the same key in every platform's build.
 */
export function baseKey(run: BuildSession, imageId: Digest, platform: Platform = run.platform): string {
  return imageChainKey(run.hasher, imageId, platform);
}

/** baseKey without a build: also the key of the image's kept snapshot (snapshot/rootfs-snapshots.ts), which `run` reads. */
export function imageChainKey(hasher: Hasher, imageId: Digest, platform: Platform): string {
  return cacheKey(hasher, undefined, { base: imageId, platform: formatPlatform(platform) }).digest;
}

export type ResolvedBase = { id: Digest; config: ImageConfig; layers: LayerRef[] };

/**
 * An image named by FROM or --from for `platform`: the local store first (unless --pull), then the registry; once
 * per build and platform. `fromStage` is the stage whose FROM names it (FROM names only earlier stages, which a
 * "did you mean" must know).
 */
export function resolveImage(run: BuildSession, name: string, range: SourceRange, platform: Platform = run.platform, fromStage?: Stage): Promise<ResolvedBase> {
  const memo = `${formatPlatform(platform)} ${name}`;
  let p = run.resolved.get(memo);
  if (!p) {
    p = lookupOrPull(run, name, range, platform, fromStage);
    run.resolved.set(memo, p);
  }
  return p;
}

export async function lookupOrPull(
  run: BuildSession,
  name: string,
  range: SourceRange,
  platform: Platform = run.platform,
  fromStage?: Stage,
): Promise<ResolvedBase> {
  if (isOciLayoutRef(name)) {
    const layout = parseOciLayoutRef(name);
    const image = await readOciLayoutImage(run.engine.content, layout, platform, { signal: run.signal }).catch((e: unknown) => {
      throw e instanceof TsbuildError ? attachRange(e, range) : e;
    });
    return { id: image.id, config: image.config, layers: image.layers };
  }
  // A foreign platform never silently gets the host's image: a single-platform image must match it.
  const opts = { platform, strict: !samePlatform(platform, hostPlatform()) };
  let localMismatch: TsbuildError | undefined;
  const find = async () => {
    try {
      return await findImage(run.engine.content, run.engine.images, name, opts);
    } catch (e) {
      if (e instanceof TsbuildError && e.code === "NO_MATCHING_PLATFORM") {
        localMismatch = e;
        return undefined;
      }
      if (e instanceof TsbuildError) throw attachRange(e, range);
      throw e;
    }
  };
  // A digest reference names content: never re-resolved, so a local copy is always right.
  let found: { manifest: Manifest; config: ImageConfig } | undefined = run.pull && !name.includes("@") ? undefined : await find();
  if (!found) {
    let pulled: { manifest: { digest: Digest }; config: Digest };
    try {
      // The build already holds the store lock: the unlocked pull, reporting to this build's sink.
      const { pullImageLocked } = await import("../registry/pull.js");
      pulled = await pullImageLocked(run.engine, name, { ...run.registry, signal: run.signal, progress: run.progress, platform });
    } catch (e) {
      throwIfAborted(run.signal);
      const why = e instanceof Error ? e.message : String(e);
      // A misspelled stage falls through to an image (as in BuildKit); only now, when no image is found, say so.
      const misspelt = stageHint(run.staged, name, fromStage);
      const local = localMismatch ? `base image ${localMismatch.message} in the local store` : `base image ${name} is not in the local store`;
      throw new BuildError(localMismatch ? "NO_MATCHING_PLATFORM" : "IMAGE_NOT_FOUND", `${local}, and pulling it failed: ${why}`, {
        range,
        hint: misspelt
          ? misspelt
          : localMismatch?.hint
            ? localMismatch.hint
            : e instanceof TsbuildError && e.hint
              ? e.hint
              : "import it with `tsbuild load -i IMAGE.tar`, or check the name and your registry access (`tsbuild login HOST`)",
        cause: e,
      });
    }
    // What was pulled, not what the name points at now: another platform's pull of the same name in this build may
    // have rewritten the name meanwhile.
    const manifest = await run.engine.content.readJson<Manifest>(pulled.manifest.digest);
    found = { manifest, config: await run.engine.content.readJson<ImageConfig>(manifest.config.digest) };
  }
  return {
    id: found.manifest.config.digest,
    config: found.config,
    layers: found.manifest.layers.map((l) => ({ diffId: l.digest, size: l.size })),
  };
}

/** The rootfs of an image named in COPY --from=<image>, materialised once per build. */
export function imageRootfs(run: BuildSession, name: string, range: SourceRange): Promise<string> {
  let p = run.imageRootfs.get(name);
  if (!p) {
    p = (async () => {
      const image = await resolveImage(run, name, range);
      // COPY only reads it: the kept snapshot of the image (the one a FROM of it would use) serves as is.
      if (run.snapshots.enabled) return ensureSnapshot(run.engine.root, baseKey(run, image.id), image.layers, run.engine.content, run.signal);
      const dir = join(run.workdir, `image-${run.imageRootfs.size}`);
      await mkdir(dir, { recursive: true });
      await extractStoredLayers(run.engine.content, image.layers, dir, run.signal);
      return dir;
    })();
    run.imageRootfs.set(name, p);
  }
  return p;
}
