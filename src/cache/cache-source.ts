// Imported cache (--cache-from): records read from a local OCI layout directory or a registry, consulted after the
// store's own records. A blob is copied into the store (and verified) only when a hit needs it.
import type { Readable } from "node:stream";
import type { Descriptor, Digest } from "../image/types.js";
import type { ContentStore } from "../store/types.js";
import type { CacheConfig, CacheImageEntry, CacheMountEntry } from "./cache-manifest.js";
import type { StepRecord } from "./records.js";

export interface CacheSource {
  /** For messages: "type=local,src=/path" or the registry reference. */
  readonly name: string;
  step(key: string): StepRecord | undefined;
  image(key: string): CacheImageEntry | undefined;
  /** A cache mount's contents exported with cache-mounts=true, by id. */
  mount(id: string): CacheMountEntry | undefined;
  /** Copies a blob into the content store, verifying its digest; rejects when the source lacks it. */
  fetch(blob: Descriptor, content: ContentStore, signal: AbortSignal): Promise<void>;
  /**
   * The blob's bytes as they are in the source, unverified (the caller checks digest and size): for a cache mount
   * tar, unpacked straight into a private temp dir instead of being stored first. Absent: use fetch.
   */
  open?(blob: Descriptor, signal: AbortSignal): Readable;
}

/** Lookup tables over a cache config; `fetch` and `open` are the backend's. */
export function cacheSource(name: string, cfg: CacheConfig, fetch: CacheSource["fetch"], open?: CacheSource["open"]): CacheSource {
  const steps = new Map(cfg.steps.map((s) => [s.key, s]));
  const images = new Map(cfg.images.map((i) => [i.key, i]));
  const mounts = new Map((cfg.mounts ?? []).map((m) => [m.id, m]));
  return { name, step: (k) => steps.get(k), image: (k) => images.get(k), mount: (id) => mounts.get(id), fetch, ...(open ? { open } : {}) };
}

/** Ensures `digest` is in the store, fetching it from `source` if needed. */
export async function ensureBlob(content: ContentStore, source: CacheSource, blob: Descriptor, signal: AbortSignal): Promise<void> {
  if (await content.has(blob.digest as Digest)) return;
  await source.fetch(blob, content, signal);
}
