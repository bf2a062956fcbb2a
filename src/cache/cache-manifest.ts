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

export type CacheMountSharing = "shared" | "private" | "locked";

/**
 * A RUN --mount=type=cache directory carried beside the records (--cache-to …,cache-mounts=true): its id, how the
 * RUN that declared it shares it, the directory's own owner and mode, and its contents as an uncompressed tar.
 */
export interface CacheMountEntry {
  id: string;
  sharing: CacheMountSharing;
  uid: number;
  gid: number;
  /** Permission bits of the directory itself (0..0o7777). */
  mode: number;
  /** The tar (media type application/vnd.oci.image.layer.v1.tar: paths relative to the directory, no whiteouts). */
  blob: { digest: Digest; size: number };
  /** When it was archived (ISO 8601). */
  created: string;
}

export interface CacheConfig {
  v: 1;
  steps: StepRecord[];
  images: CacheImageEntry[];
  /** Absent in caches written without cache-mounts=true (and by tsbuild before it), which readers treat as none. */
  mounts?: CacheMountEntry[];
}

/** Every blob the records need, each once: layers, cache mount tars, then image manifests and configs. */
export function cacheBlobs(cfg: CacheConfig): Descriptor[] {
  const out = new Map<Digest, Descriptor>();
  for (const s of cfg.steps) if (s.layer) out.set(s.layer.diffId, { mediaType: MediaType.OciLayer, digest: s.layer.diffId, size: s.layer.size });
  // The plain OCI layer type: every registry that takes images takes it, and tools (skopeo, oras) can copy it.
  for (const m of cfg.mounts ?? []) out.set(m.blob.digest, { mediaType: MediaType.OciLayer, digest: m.blob.digest, size: m.blob.size });
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

/** Merges two record sets; `newer` wins for a key (a cache mount: an id) present in both. */
export function mergeCacheConfigs(older: CacheConfig | undefined, newer: CacheConfig): CacheConfig {
  if (!older) return newer;
  const steps = new Map(older.steps.map((s) => [s.key, s]));
  for (const s of newer.steps) steps.set(s.key, s);
  const images = new Map(older.images.map((i) => [i.key, i]));
  for (const i of newer.images) images.set(i.key, i);
  const mounts = new Map((older.mounts ?? []).map((m) => [m.id, m]));
  for (const m of newer.mounts ?? []) mounts.set(m.id, m);
  return { v: 1, steps: [...steps.values()], images: [...images.values()], ...(mounts.size ? { mounts: [...mounts.values()] } : {}) };
}

/** The part of `cfg` whose blobs are all in `present`: what an export may name after copying what it could. */
export function keepPresent(cfg: CacheConfig, present: ReadonlySet<string>): CacheConfig {
  const mounts = (cfg.mounts ?? []).filter((m) => present.has(m.blob.digest));
  return {
    v: 1,
    steps: cfg.steps.filter((s) => !s.layer || present.has(s.layer.diffId)),
    images: cfg.images.filter((i) => present.has(i.manifest.digest) && present.has(i.config.digest)),
    ...(mounts.length ? { mounts } : {}),
  };
}

function isDescriptor(d: unknown): d is Descriptor {
  const o = d as Descriptor | undefined;
  return !!o && typeof o === "object" && isDigest(o.digest) && Number.isInteger(o.size) && o.size >= 0;
}

const SHARING = new Set<unknown>(["shared", "private", "locked"]);
const MAX_ID = 0xffffffff;
const MAX_MOUNT_ID_LENGTH = 4096;

function isCacheMountEntry(m: unknown): m is CacheMountEntry {
  const o = m as CacheMountEntry | undefined;
  const id = (n: unknown) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= MAX_ID;
  return (
    !!o &&
    typeof o === "object" &&
    typeof o.id === "string" &&
    o.id.length > 0 &&
    o.id.length <= MAX_MOUNT_ID_LENGTH &&
    !o.id.includes("\0") &&
    SHARING.has(o.sharing) &&
    id(o.uid) &&
    id(o.gid) &&
    Number.isInteger(o.mode) &&
    o.mode >= 0 &&
    o.mode <= 0o7777 &&
    isDescriptor(o.blob) &&
    typeof o.created === "string"
  );
}

/** Validates a cache config read from outside (a directory or a registry); damaged entries are dropped, not trusted. */
export function parseCacheConfig(data: unknown): CacheConfig | undefined {
  const o = data as CacheConfig | undefined;
  if (!o || o.v !== 1 || !Array.isArray(o.steps) || !Array.isArray(o.images)) return undefined;
  const mounts = Array.isArray(o.mounts)
    ? o.mounts.filter(isCacheMountEntry).map((m) => ({
        id: m.id,
        sharing: m.sharing,
        uid: m.uid,
        gid: m.gid,
        mode: m.mode,
        blob: { digest: m.blob.digest, size: m.blob.size },
        created: m.created,
      }))
    : [];
  return {
    v: 1,
    steps: o.steps.filter((s) => isStepRecord(s)),
    images: o.images.filter((i) => i && typeof i.key === "string" && /^[0-9a-f]{32}$/.test(i.key) && isDescriptor(i.manifest) && isDescriptor(i.config)),
    ...(mounts.length ? { mounts } : {}),
  };
}
