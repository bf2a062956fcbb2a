// Formats of the store's records that more than their writer must read: step and image cache records (builds write
// them, prune and du follow them to blobs) and compressed-layer mappings. Paths are in layout.ts. Explain records and
// context stat caches are opaque to the store (prune drops them whole); their formats live with their writers.
import { isDigest, type Descriptor, type Digest } from "../image/types.js";
import { isStoreKey } from "./layout.js";

/** The record format version builds write; records of other versions are kept but never used (a miss). */
export const RECORD_VERSION = 1;

export interface LayerRecord {
  diffId: Digest;
  size: number;
}

/** cache/steps/…/<key>.json: what a step produced. */
export interface StepRecord {
  v: 1;
  key: string;
  /** The layer the step produced; null when it changed no file (the step still counts as cached). */
  layer: LayerRecord | null;
  created: string;
}

/** cache/images/<key>.json: the image a build's final stage produced. */
export interface ImageCacheRecord {
  v: 1;
  manifest: Descriptor;
}

/** compressed/gzip/<diff_id hex>.json: the gzip blob of a stored layer. */
export interface GzipMapping {
  digest: Digest;
  size: number;
}

export function isStepRecord(r: unknown, key?: string): r is StepRecord {
  const o = r as StepRecord | undefined;
  if (!o || o.v !== RECORD_VERSION || typeof o.key !== "string" || !isStoreKey(o.key) || (key !== undefined && o.key !== key)) return false;
  if (o.layer === null) return true;
  return typeof o.layer === "object" && isDigest(o.layer.diffId) && Number.isInteger(o.layer.size) && o.layer.size >= 0;
}

export function isImageCacheRecord(r: unknown): r is ImageCacheRecord {
  const o = r as ImageCacheRecord | undefined;
  return !!o && o.v === RECORD_VERSION && !!o.manifest && isDigest(o.manifest.digest);
}

/**
 * What a step record file's content needs, for GC: "broken" (unreadable or malformed), "opaque" (another version:
 * kept, its blobs unknown) or the blobs it needs (none for a step that changed no file).
 */
export function stepRecordNeeds(v: unknown): "broken" | "opaque" | Digest[] {
  const o = v as { v?: unknown; layer?: { diffId?: unknown } | null } | undefined;
  if (typeof o !== "object" || o === null) return "broken";
  if (o.v !== RECORD_VERSION) return "opaque";
  if (o.layer === null) return [];
  return typeof o.layer?.diffId === "string" && isDigest(o.layer.diffId) ? [o.layer.diffId] : "broken";
}

/** The manifest an image cache record points at, for GC: like stepRecordNeeds, but the top descriptor. */
export function imageRecordNeeds(v: unknown): "broken" | "opaque" | Descriptor {
  const o = v as { v?: unknown; manifest?: Partial<Descriptor> } | undefined;
  if (typeof o !== "object" || o === null) return "broken";
  if (o.v !== RECORD_VERSION) return "opaque";
  const m = o.manifest;
  if (!m || typeof m.digest !== "string" || !isDigest(m.digest)) return "broken";
  return { mediaType: String(m.mediaType ?? ""), digest: m.digest, size: Number(m.size ?? 0) };
}

/** A compressed-layer mapping, for its reader; undefined when the content is not a valid mapping (recompute). */
export function gzipMapping(v: unknown): GzipMapping | undefined {
  const m = v as Partial<GzipMapping> | undefined;
  if (typeof m !== "object" || m === null || typeof m.digest !== "string" || !isDigest(m.digest) || typeof m.size !== "number") return undefined;
  return { digest: m.digest, size: m.size };
}

/** The gzip blob a mapping holds alive, for GC: any valid digest counts, even without a size. */
export function gzipMappingBlob(v: unknown): Digest | undefined {
  const d = (v as Partial<GzipMapping> | undefined)?.digest;
  return typeof d === "string" && isDigest(d) ? d : undefined;
}
