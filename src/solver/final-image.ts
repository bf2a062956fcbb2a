// The final image: its identity apart from timestamps (a no-op rebuild reuses the earlier image), and Docker's key order.
import { throwIfAborted } from "../errors.js";
import { type PlannedStage, type SourceRef } from "../frontend/plan.js";
import type { Stage } from "../frontend/types.js";
import { type ImageConfig, type Digest } from "../image/types.js";
import { type LayerRef } from "./stage-state.js";
import { writeImage, type StoredImage } from "./image-writer.js";
import { type Hasher } from "../util/hasher.js";
import { getImageRecord, putImageRecord } from "../cache/records.js";
import { ensureBlob } from "../cache/cache-source.js";
import type { BuildSession } from "./build-session.js";

/** The stage and the stages it is built FROM (not those it only COPYs from): what the image's layers come from. */
export function fromChain(run: BuildSession, stage: Stage): number[] {
  const out: number[] = [];
  let s: Stage | undefined = stage;
  while (s) {
    out.push(s.index);
    const base: SourceRef = (run.plan.stages[s.index] as PlannedStage).base;
    s = base.kind === "stage" ? run.staged.stages[base.index] : undefined;
  }
  return out;
}

/** Identity of a final image apart from its timestamps: equal keys mean the earlier image can be reused as is. */
export function finalImageKey(hasher: Hasher, config: ImageConfig, layers: LayerRef[]): string {
  const { created: _created, history, ...rest } = config;
  const timeless = { ...rest, history: (history ?? []).map(({ created: _c, ...h }) => h) };
  return hasher.key(JSON.stringify({ config: timeless, layers: layers.map((l) => l.diffId) }));
}

/** A rebuild with nothing changed gives the same image (same id and digest), as BuildKit does. */
export async function reuseOrWriteImage(run: BuildSession, key: string, config: ImageConfig, layers: LayerRef[]): Promise<StoredImage> {
  const content = run.engine.content;
  const record = await getImageRecord(run.engine.root, key);
  if (record) {
    try {
      const manifest = await content.readJson<{ config: { digest: Digest } }>(record.manifest.digest);
      if (await content.has(manifest.config.digest)) return { manifest: record.manifest, config: manifest.config.digest };
    } catch {
      /* manifest pruned or damaged: write the image again */
    }
  }
  for (const source of run.cacheFrom) {
    const imported = source.image(key);
    if (!imported) continue;
    try {
      await ensureBlob(content, source, imported.manifest, run.signal);
      await ensureBlob(content, source, imported.config, run.signal);
    } catch (e) {
      throwIfAborted(run.signal);
      run.progress.emit({ kind: "warning", message: `cache ${source.name}: cannot use image ${imported.manifest.digest}: ${(e as Error).message}` });
      continue;
    }
    await putImageRecord(run.engine.root, key, imported.manifest);
    return { manifest: imported.manifest, config: imported.config.digest };
  }
  const stored = await writeImage(content, config, layers);
  await putImageRecord(run.engine.root, key, stored.manifest);
  return stored;
}

/** Docker's key order for image configs, so digests do not depend on how the config was assembled. */
export function orderConfig(c: ImageConfig): ImageConfig {
  const { created, author, architecture, os, variant, config, rootfs, history, ...rest } = c;
  return {
    ...(created !== undefined ? { created } : {}),
    ...(author !== undefined ? { author } : {}),
    architecture,
    os,
    ...(variant !== undefined ? { variant } : {}),
    config,
    rootfs,
    ...(history !== undefined ? { history } : {}),
    ...rest,
  };
}
