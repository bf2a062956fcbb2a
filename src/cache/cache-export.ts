// What --cache-to exports from a finished build: mode=min the records of the steps that made the image (the target
// stage and the stages it is built FROM), mode=max those of every stage built; plus the final-image record, and with
// cache-mounts=true the cache mounts those stages' RUN steps declare (archived by cache-mounts.ts).
import { MediaType } from "../image/types.js";
import type { ContentStore } from "../store/types.js";
import type { Descriptor, Digest } from "../image/types.js";
import type { CacheConfig, CacheMountEntry, CacheMountSharing } from "./cache-manifest.js";
import type { StepRecord } from "./records.js";

export type CacheExportMode = "min" | "max";

/** What a finished build tells the cache exporter (the solver's BuildResult has this shape). */
export interface BuildCacheOutcome {
  manifest: Descriptor;
  config: Digest;
  cache: {
    targetChain: number[];
    records: { stage: number; record: StepRecord }[];
    /** RUN --mount=type=cache ids per stage. */
    cacheMounts?: { stage: number; id: string; sharing: CacheMountSharing }[];
    imageKey: string;
    /** Every platform's final image (a multi-platform build has several); default the one above. */
    images?: { key: string; manifest: Descriptor; config: Digest }[];
  };
}

/** The cache mounts the exported stages declare, in declaration order (an id may repeat). */
export function exportedCacheMounts(result: BuildCacheOutcome, mode: CacheExportMode): { id: string; sharing: CacheMountSharing }[] {
  const chain = new Set(result.cache.targetChain);
  return (result.cache.cacheMounts ?? []).filter((m) => mode === "max" || chain.has(m.stage)).map(({ id, sharing }) => ({ id, sharing }));
}

export async function cacheConfigFor(
  content: ContentStore,
  result: BuildCacheOutcome,
  mode: CacheExportMode,
  mounts: CacheMountEntry[] = [],
): Promise<CacheConfig> {
  const chain = new Set(result.cache.targetChain);
  const steps = new Map<string, StepRecord>();
  for (const r of result.cache.records) if (mode === "max" || chain.has(r.stage)) steps.set(r.record.key, r.record);
  const finals = result.cache.images ?? [{ key: result.cache.imageKey, manifest: result.manifest, config: result.config }];
  const images: CacheConfig["images"] = [];
  for (const img of finals) {
    const configSize = (await content.size(img.config)) ?? 0;
    images.push({ key: img.key, manifest: img.manifest, config: { mediaType: MediaType.OciConfig, digest: img.config, size: configSize } });
  }
  return { v: 1, steps: [...steps.values()], images, ...(mounts.length ? { mounts } : {}) };
}
