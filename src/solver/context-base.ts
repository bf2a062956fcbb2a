// FROM NAME where --build-context NAME=DIR: BuildKit's local source as a stage's base. The stage starts from one layer
// holding the directory's files (modes, mtimes, links kept; owners 0:0, as the client's resetUIDAndGID sends them;
// the directory's own .dockerignore applied) over FROM scratch's config (dockerfile2llb's emptyImage: PATH and
// WorkingDir "/"). BuildKit's exporter then adds the history line a layer without one gets ("buildkit.exporter.image.v0").
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { BuildError, throwIfAborted } from "../errors.js";
import type { Stage } from "../frontend/types.js";
import { formatPlatform } from "../image/platform.js";
import type { ImageConfig, Platform } from "../image/types.js";
import { cacheKey } from "../cache/keys.js";
import { putStepRecord, type StepRecord } from "../cache/records.js";
import { digestContextSources } from "../context/source-digest.js";
import { storeLayer } from "../layer/store-layer.js";
import { applyCopy } from "./copy.js";
import { findStepRecord } from "./step-cache.js";
import type { BuildSession } from "./build-session.js";
import type { StageState } from "./stage-state.js";

/** The history comment BuildKit's image exporter gives a layer the frontend wrote no history for. */
export const EXPORTER_HISTORY_COMMENT = "buildkit.exporter.image.v0";

/** The starting state of `stage`, FROM the named directory `name`; `config` is FROM scratch's for its platform. */
export async function contextBaseState(run: BuildSession, stage: Stage, name: string, config: ImageConfig, platform: Platform): Promise<StageState> {
  const range = stage.from.range;
  const named = run.namedContexts.get(name);
  if (!named) throw new BuildError("INTERNAL", `named context ${name} was planned but not opened`, { range });
  // Keyed by content only, like a COPY of the whole directory onto nothing: the same files give the same layer.
  const digest = await digestContextSources(named.context, ["."], await named.hashCache(), run.hasher, { range, signal: run.signal });
  const key = cacheKey(run.hasher, undefined, { base: "local context", files: digest.digest, epoch: String(run.epoch) });
  let record: StepRecord | undefined = run.noCache(stage) ? undefined : await findStepRecord(run, key.digest);
  if (!record) {
    const layer = await run.limit(async () => {
      throwIfAborted(run.signal);
      const dir = join(run.workdir, `context-${stage.index}`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true, mode: 0o755 });
      try {
        const entries = await applyCopy({
          rootfs: dir,
          sources: ["."],
          dest: "/",
          workdir: "/",
          from: { kind: "context", context: named.context, keyed: digest.ledger },
          isAdd: false,
          epoch: run.epoch,
          clampMtime: run.clampEpoch !== undefined,
          range,
          signal: run.signal,
        });
        return await storeLayer(run.engine.content, entries, { signal: run.signal });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
    record = { v: 1, key: key.digest, layer: { diffId: layer.diffId, size: layer.size }, created: new Date().toISOString() };
    await putStepRecord(run.engine.root, record);
  }
  const layers = record.layer ? [{ diffId: record.layer.diffId, size: record.layer.size }] : [];
  config.rootfs.diff_ids = layers.map((l) => l.diffId);
  // BuildKit names the layer after its local source ("local source for context:NAME-<session key>"); the key part
  // is buildx's per-machine id, which a reproducible build leaves out.
  config.history = [{ created: run.created, created_by: `local source for context:${name}`, comment: EXPORTER_HISTORY_COMMENT }];
  run.records.push({ stage: stage.index, record });
  return {
    config,
    layers,
    args: new Map(),
    cmdSet: false,
    key: cacheKey(run.hasher, undefined, { base: key.digest, platform: formatPlatform(platform) }).digest,
  };
}
