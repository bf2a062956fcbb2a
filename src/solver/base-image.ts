// FROM and COPY --from=<image>: base images looked up in the store (or pulled) once per build, the stage's starting
// state (config, layers, first cache key), and an image's rootfs for COPY --from.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { BuildError, StoreError, TsbuildError, throwIfAborted, attachRange } from "../errors.js";
import type { SourceRange, Stage } from "../frontend/types.js";
import { type ImageConfig, type Digest, type Platform } from "../image/types.js";
import type { Hasher } from "../util/hasher.js";
import { extractStoredLayers } from "../layer/extract-stored.js";
import { imageConfigProblem } from "../image/config-check.js";
import { DEFAULT_PATH, getEnv, setEnv, type LayerRef, type StageState } from "./stage-state.js";
import { findImage } from "./image-writer.js";
import { stageHint } from "../frontend/plan.js";
import { cacheKey } from "../cache/keys.js";
import { ensureSnapshot } from "../snapshot/rootfs-snapshots.js";
import { stagePrefix, type BuildSession } from "./build-session.js";
import { stepNumbers } from "./step-numbers.js";

export function emptyConfig(run: BuildSession): ImageConfig {
  return {
    architecture: run.platform.architecture,
    os: run.platform.os,
    // BuildKit's image for FROM scratch: PATH and WorkingDir "/".
    config: { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: "/" },
    rootfs: { type: "layers", diff_ids: [] },
    history: [],
  };
}

export async function prepareBase(run: BuildSession, stage: Stage, baseName: string, baseStage: Stage | undefined): Promise<StageState> {
  const node = `stage-${stage.index}-from`;
  const planned = run.plan.stages[stage.index];
  const total = planned ? stepNumbers(planned).total : stage.instructions.length + 1;
  const label = `[${stagePrefix(run, stage)}1/${total}] FROM ${baseName}`;
  const started = Date.now();
  run.progress.emit({ kind: "step-start", node, name: label, range: stage.from.range, cached: false });
  let state: StageState;
  const platform = `${run.platform.os}/${run.platform.architecture}`;
  // The filesystem is not unpacked here: the first step that must run (or a stage reading this one) does it.
  if (baseStage) {
    const base = await run.stages.result(baseStage);
    state = { config: structuredClone(base.state.config), layers: [...base.state.layers], args: new Map(), cmdSet: false, key: base.state.key };
  } else if (baseName.toLowerCase() === "scratch") {
    state = {
      config: emptyConfig(run),
      layers: [],
      args: new Map(),
      cmdSet: false,
      key: cacheKey(run.hasher, undefined, { base: "scratch", platform }).digest,
    };
  } else {
    const image = await resolveImage(run, baseName, stage.from.range, stage);
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
    state = { config, layers: [...image.layers], args: new Map(), cmdSet: false, key: baseKey(run, image.id) };
  }
  // The new image gets this build's platform and creation time; its history and layers carry over.
  delete state.config.created;
  run.progress.emit({ kind: "step-end", node, durationMs: Date.now() - started });
  return state;
}

/** The first key of a chain that starts FROM an image: its id (config digest) on this build's platform. */
export function baseKey(run: BuildSession, imageId: Digest): string {
  return imageChainKey(run.hasher, imageId, run.platform);
}

/** baseKey without a build: also the key of the image's kept snapshot (snapshot/rootfs-snapshots.ts), which `run` reads. */
export function imageChainKey(hasher: Hasher, imageId: Digest, platform: Pick<Platform, "os" | "architecture">): string {
  return cacheKey(hasher, undefined, { base: imageId, platform: `${platform.os}/${platform.architecture}` }).digest;
}

export type ResolvedBase = { id: Digest; config: ImageConfig; layers: LayerRef[] };

/**
 * An image named by FROM or --from: the local store first (unless --pull), then the registry; once per build.
 * `fromStage` is the stage whose FROM names it (FROM names only earlier stages, which a "did you mean" must know).
 */
export function resolveImage(run: BuildSession, name: string, range: SourceRange, fromStage?: Stage): Promise<ResolvedBase> {
  let p = run.resolved.get(name);
  if (!p) {
    p = lookupOrPull(run, name, range, fromStage);
    run.resolved.set(name, p);
  }
  return p;
}

export async function lookupOrPull(run: BuildSession, name: string, range: SourceRange, fromStage?: Stage): Promise<ResolvedBase> {
  const find = async () => {
    try {
      return await findImage(run.engine.content, run.engine.images, name);
    } catch (e) {
      if (e instanceof TsbuildError) throw attachRange(e, range);
      throw e;
    }
  };
  // A digest reference names content: never re-resolved, so a local copy is always right.
  let found = run.pull && !name.includes("@") ? undefined : await find();
  if (!found) {
    try {
      // The build already holds the store lock: the unlocked pull, reporting to this build's sink.
      const { pullImageLocked } = await import("../registry/pull.js");
      await pullImageLocked(run.engine, name, { ...run.registry, signal: run.signal, progress: run.progress });
    } catch (e) {
      throwIfAborted(run.signal);
      const why = e instanceof Error ? e.message : String(e);
      // A misspelled stage falls through to an image (as in BuildKit); only now, when no image is found, say so.
      const misspelt = stageHint(run.staged, name, fromStage);
      throw new BuildError("IMAGE_NOT_FOUND", `base image ${name} is not in the local store, and pulling it failed: ${why}`, {
        range,
        hint: misspelt
          ? misspelt
          : e instanceof TsbuildError && e.hint
            ? e.hint
            : "import it with `tsbuild load -i IMAGE.tar`, or check the name and your registry access (`tsbuild login HOST`)",
        cause: e,
      });
    }
    found = await find();
    if (!found) throw new BuildError("IMAGE_NOT_FOUND", `base image ${name} was pulled but cannot be found in the store`, { range });
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
