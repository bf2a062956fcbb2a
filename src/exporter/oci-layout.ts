// OCI image layout export (a directory or a tar of one): oci-layout, index.json and blobs/sha256/*. Local layers
// (uncompressed, digest = diff_id) are compressed on the way out (gzip by default, or zstd), which rewrites the manifest.
import { availableParallelism } from "node:os";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import pLimit from "p-limit";
import type { Writable } from "node:stream";
import { ArchiveError, throwIfAborted } from "../errors.js";
import { jsonBytes, sha256Digest } from "../image/json.js";
import { isIndexMediaType, isUncompressedLayer } from "../image/media-types.js";
import { configPlatform } from "../image/platform.js";
import { parseReference } from "../image/reference.js";
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest } from "../image/types.js";
import type { LayerCompressionChoice } from "../layer/compression-options.js";
import { compressedLayer } from "../layer/store-layer.js";
import type { ContentStore } from "../store/types.js";
import { openDirWriter, openTarWriter, type LayoutWriter } from "./layout-writer.js";

export interface OciLayoutOptions {
  tar: boolean;
  /** Layer compression in the layout; default gzip. */
  compression?: LayerCompressionChoice["compression"];
  /** gzip 0-9 / zstd 1-22, for layers compressed now (cached forms are reused unless forceCompression). */
  compressionLevel?: number;
  /** Recompress layers even when a cached compressed form exists. */
  forceCompression?: boolean;
  signal?: AbortSignal;
  /** How error messages name `dest` (e.g. "--output dest"); default "output file" / "output directory". */
  what?: string;
  /** Write the tar into this stream (standard output) instead of `dest`; needs `tar`. */
  stream?: Writable;
  /** The layout's index.json `annotations` (buildx's --annotation index:…). */
  indexAnnotations?: Record<string, string>;
}

export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";
export const ANNOTATION_IMAGE_NAME = "io.containerd.image.name";

/** One blob to copy into the layout: from the store, or (rewritten manifests) from memory. */
export type LayoutBlob = { digest: Digest; size: number; bytes?: Buffer };

export function blobPath(d: Digest): string {
  return `blobs/sha256/${d.slice("sha256:".length)}`;
}

/** Name annotations, BuildKit style: ref.name is the tag, io.containerd.image.name the full normalised name. */
export function nameAnnotations(name: string | undefined): Record<string, string> | undefined {
  if (name === undefined) return undefined;
  const ref = parseReference(name);
  const out: Record<string, string> = { [ANNOTATION_IMAGE_NAME]: ref.name };
  if (ref.tag !== undefined) out[ANNOTATION_REF_NAME] = ref.tag;
  return out;
}

/**
 * Collect the blobs of one image (manifest or index) and the descriptor to list in index.json, compressing local
 * layers when asked. Blobs are added to `blobs` (keyed by digest, so shared layers are written once).
 */
export async function collectImage(
  store: ContentStore,
  desc: Descriptor,
  compression: LayerCompressionChoice,
  blobs: Map<Digest, LayoutBlob>,
  signal?: AbortSignal,
): Promise<Descriptor> {
  throwIfAborted(signal);
  if (!(await store.has(desc.digest))) throw new ArchiveError("BLOB_MISSING", `manifest ${desc.digest} is not in the store`);
  if (isIndexMediaType(desc.mediaType)) {
    // An index of local manifests (a multi-platform build or load) gets its layers compressed like a single image,
    // which rewrites the index; one whose manifests need no rewriting is copied as it is (its digest is kept).
    const index = await store.readJson<Index>(desc.digest);
    const entries: Descriptor[] = [];
    for (const m of index.manifests) {
      const d = await collectImage(store, m, compression, blobs, signal);
      entries.push({ ...d, ...(m.annotations ? { annotations: m.annotations } : {}), ...(m.platform ? { platform: m.platform } : {}) });
    }
    if (entries.every((e, i) => e.digest === index.manifests[i]?.digest)) {
      blobs.set(desc.digest, { digest: desc.digest, size: desc.size });
      return { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
    }
    const bytes = jsonBytes({ ...index, mediaType: MediaType.OciIndex, manifests: entries });
    const digest = sha256Digest(bytes);
    blobs.set(digest, { digest, size: bytes.length, bytes });
    return { mediaType: MediaType.OciIndex, digest, size: bytes.length };
  }
  const manifest = await store.readJson<Manifest>(desc.digest);
  const config = await store.readJson<ImageConfig>(manifest.config.digest);
  blobs.set(manifest.config.digest, { digest: manifest.config.digest, size: manifest.config.size });

  const limit = pLimit(Math.max(1, Math.min(4, availableParallelism())));
  let rewritten = false;
  const layers = await Promise.all(
    manifest.layers.map((l) =>
      limit(async () => {
        if (compression.compression !== "uncompressed" && isUncompressedLayer(l.mediaType)) {
          const c = await compressedLayer(store, l.digest, {
            format: compression.compression,
            ...(compression.level !== undefined ? { level: compression.level } : {}),
            ...(compression.force ? { force: true } : {}),
            ...(signal ? { signal } : {}),
          });
          rewritten = true;
          return { ...l, mediaType: c.mediaType, digest: c.digest, size: c.size };
        }
        return l;
      }),
    ),
  );
  for (const l of layers) blobs.set(l.digest, { digest: l.digest, size: l.size });

  let out: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  if (rewritten) {
    const m: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: manifest.config, layers };
    if (manifest.annotations) m.annotations = manifest.annotations;
    const bytes = jsonBytes(m);
    const digest = sha256Digest(bytes);
    blobs.set(digest, { digest, size: bytes.length, bytes });
    out = { mediaType: MediaType.OciManifest, digest, size: bytes.length };
  } else {
    blobs.set(desc.digest, { digest: desc.digest, size: desc.size });
  }
  out.platform = configPlatform(config);
  return out;
}

export async function writeBlobs(w: LayoutWriter, store: ContentStore, blobs: Map<Digest, LayoutBlob>): Promise<void> {
  // Sorted: the same images always give the same archive.
  for (const b of [...blobs.values()].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))) {
    if (b.bytes) await w.addBytes(blobPath(b.digest), b.bytes);
    else await w.addBlob(blobPath(b.digest), store, b.digest, b.size);
  }
}

/** Entries of an existing layout's index.json that the new names do not replace (directory exports add to a layout). */
async function keptEntries(dir: string, replaced: Descriptor[]): Promise<Descriptor[]> {
  let old: Index;
  try {
    old = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as Index;
  } catch {
    return [];
  }
  if (!Array.isArray(old.manifests)) return [];
  const names = new Set(replaced.flatMap((d) => [d.annotations?.[ANNOTATION_IMAGE_NAME]].filter((n): n is string => n !== undefined)));
  const refs = new Set(replaced.flatMap((d) => [d.annotations?.[ANNOTATION_REF_NAME]].filter((n): n is string => n !== undefined)));
  return old.manifests.filter((d) => {
    const n = d.annotations?.[ANNOTATION_IMAGE_NAME];
    const r = d.annotations?.[ANNOTATION_REF_NAME];
    return !(n !== undefined && names.has(n)) && !(r !== undefined && refs.has(r));
  });
}

export async function exportOciLayout(
  store: ContentStore,
  images: { name?: string; manifest: Descriptor; annotations?: Record<string, string> }[],
  dest: string,
  opts: OciLayoutOptions,
): Promise<{ descriptor: Descriptor }> {
  if (images.length === 0) throw new ArchiveError("NOTHING_TO_EXPORT", "no images to export");
  const compression: LayerCompressionChoice = {
    compression: opts.compression ?? "gzip",
    ...(opts.compressionLevel !== undefined ? { level: opts.compressionLevel } : {}),
    ...(opts.forceCompression ? { force: true } : {}),
  };
  const blobs = new Map<Digest, LayoutBlob>();
  const entries: Descriptor[] = [];
  for (const img of images) {
    const d = await collectImage(store, img.manifest, compression, blobs, opts.signal);
    // Descriptor annotations (--annotation manifest-descriptor:…) under the name ones, which readers look up.
    const ann = img.annotations || img.name !== undefined ? { ...(img.annotations ?? {}), ...(nameAnnotations(img.name) ?? {}) } : undefined;
    entries.push(ann ? { ...d, annotations: ann } : d);
  }
  const first = entries[0];
  if (!first) throw new ArchiveError("NOTHING_TO_EXPORT", "no images to export");

  const manifests = opts.tar ? entries : [...(await keptEntries(dest, entries)), ...entries];
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests,
    ...(opts.indexAnnotations && Object.keys(opts.indexAnnotations).length ? { annotations: opts.indexAnnotations } : {}),
  };
  const w = opts.tar ? await openTarWriter(dest, opts.signal, opts.what, opts.stream) : await openDirWriter(dest, opts.signal, opts.what);
  try {
    await w.addBytes("oci-layout", jsonBytes({ imageLayoutVersion: "1.0.0" }));
    await writeBlobs(w, store, blobs);
    // index.json last: in a directory, a reader never sees an index naming blobs not yet written.
    await w.addBytes("index.json", jsonBytes(index));
    await w.finish();
  } catch (e) {
    await w.abort();
    throw e;
  }
  const { annotations: _a, ...descriptor } = first;
  return { descriptor };
}
