// The portable form of cache records, shared by the local-directory and registry cache backends: an OCI artifact
// whose config lists step and image records and whose "layers" are the blobs those records need.
import { MediaType, isDigest, type Descriptor, type Digest, type Manifest } from "../image/types.js";
import { isStepRecord, type StepRecord } from "./records.js";

export const CACHE_ARTIFACT_TYPE = "application/vnd.tsbuild.cache.v1";
export const CACHE_CONFIG_TYPE = "application/vnd.tsbuild.cache.config.v1+json";

export interface CacheImageEntry {
  key: string;
  manifest: Descriptor;
  /** The config digest the manifest names (so an importer knows every blob without reading the manifest first). */
  config: Descriptor;
}

export interface CacheConfig {
  v: 1;
  steps: StepRecord[];
  images: CacheImageEntry[];
}

/** Every blob the records need, each once: layers, then image manifests and configs. */
export function cacheBlobs(cfg: CacheConfig): Descriptor[] {
  const out = new Map<Digest, Descriptor>();
  for (const s of cfg.steps) if (s.layer) out.set(s.layer.diffId, { mediaType: MediaType.OciLayer, digest: s.layer.diffId, size: s.layer.size });
  for (const i of cfg.images) {
    out.set(i.manifest.digest, { ...i.manifest, mediaType: i.manifest.mediaType || MediaType.OciManifest });
    out.set(i.config.digest, { ...i.config, mediaType: i.config.mediaType || MediaType.OciConfig });
  }
  return [...out.values()];
}

export function cacheManifest(config: { digest: Digest; size: number }, blobs: Descriptor[]): Manifest & { artifactType: string } {
  return {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: CACHE_ARTIFACT_TYPE,
    config: { mediaType: CACHE_CONFIG_TYPE, digest: config.digest, size: config.size },
    layers: blobs,
  };
}

/** Merges two record sets; `newer` wins for a key present in both. */
export function mergeCacheConfigs(older: CacheConfig | undefined, newer: CacheConfig): CacheConfig {
  if (!older) return newer;
  const steps = new Map(older.steps.map((s) => [s.key, s]));
  for (const s of newer.steps) steps.set(s.key, s);
  const images = new Map(older.images.map((i) => [i.key, i]));
  for (const i of newer.images) images.set(i.key, i);
  return { v: 1, steps: [...steps.values()], images: [...images.values()] };
}

function isDescriptor(d: unknown): d is Descriptor {
  const o = d as Descriptor | undefined;
  return !!o && typeof o === "object" && isDigest(o.digest) && Number.isInteger(o.size) && o.size >= 0;
}

/** Validates a cache config read from outside (a directory or a registry); damaged entries are dropped, not trusted. */
export function parseCacheConfig(data: unknown): CacheConfig | undefined {
  const o = data as CacheConfig | undefined;
  if (!o || o.v !== 1 || !Array.isArray(o.steps) || !Array.isArray(o.images)) return undefined;
  return {
    v: 1,
    steps: o.steps.filter((s) => isStepRecord(s)),
    images: o.images.filter((i) => i && typeof i.key === "string" && /^[0-9a-f]{32}$/.test(i.key) && isDescriptor(i.manifest) && isDescriptor(i.config)),
  };
}
