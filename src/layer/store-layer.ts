// Layers in the store: written once as uncompressed tars (blob digest = diff_id), compressed lazily for export or
// push, with the diff_id → compressed blob mapping cached under compressed/{gzip,zstd}/ so each layer is compressed
// only once per format.
import { readFile } from "node:fs/promises";
import { StoreError } from "../errors.js";
import { MediaType, type Descriptor, type Digest } from "../image/types.js";
import { compressLayerStream } from "./compress-layer.js";
import type { LayerCompressionFormat } from "./compression-options.js";
import { writeFileAtomic } from "../store/atomic-write.js";
import { storeLayout } from "../store/layout.js";
import { gzipMapping, type GzipMapping } from "../store/record-formats.js";
import type { ContentStore } from "../store/types.js";
import { writeLayerTar } from "./tar-writer.js";
import type { LayerEntry } from "./types.js";

export interface StoreLayerOptions {
  signal?: AbortSignal;
}

/** Write entries as an uncompressed tar blob; its digest is the layer's diff_id. */
export async function storeLayer(
  store: ContentStore,
  entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>,
  opts: StoreLayerOptions = {},
): Promise<{ diffId: Digest; size: number }> {
  const w = store.write();
  try {
    // The store's writer has hashed and written a chunk when its callback runs: batches can be reused.
    await writeLayerTar(entries, w.stream, { reuseChunks: true, ...(opts.signal ? { signal: opts.signal } : {}) });
    const { digest, size } = await w.commit();
    return { diffId: digest, size };
  } catch (e) {
    await w.abort();
    throw e;
  }
}

export interface CompressedLayerOptions {
  /** gzip (default; OCI tar+gzip) or zstd (OCI tar+zstd). */
  format?: LayerCompressionFormat;
  /** gzip 0-9 (default 6), zstd 1-22 (default 3). Only used when the compressed form is computed: a cached mapping
   *  is reused whatever its level, unless `force` (BuildKit's compression-level and force-compression). */
  level?: number;
  /** Compress again even when a cached form exists, and replace the cached mapping. */
  force?: boolean;
  signal?: AbortSignal;
}

async function cachedMapping(store: ContentStore, path: string): Promise<GzipMapping | undefined> {
  let m: GzipMapping | undefined;
  try {
    m = gzipMapping(JSON.parse(await readFile(path, "utf8")));
  } catch {
    return undefined; // missing or unreadable: recompute
  }
  if (!m) return undefined;
  // The blob may have been pruned since; then the mapping is stale.
  return (await store.size(m.digest)) === m.size ? { digest: m.digest, size: m.size } : undefined;
}

/** The compressed (OCI tar+gzip or tar+zstd) descriptor of a stored layer, compressing and caching it the first time. */
export async function compressedLayer(store: ContentStore, diffId: Digest, opts: CompressedLayerOptions = {}): Promise<Descriptor> {
  const format = opts.format ?? "gzip";
  const mediaType = format === "zstd" ? MediaType.OciLayerZstd : MediaType.OciLayerGzip;
  const layout = storeLayout(store.root);
  const path = layout.compressed(diffId, format);
  const cached = opts.force ? undefined : await cachedMapping(store, path);
  if (cached) return { mediaType, digest: cached.digest, size: cached.size };
  if (!(await store.has(diffId))) throw new StoreError("BLOB_NOT_FOUND", `layer ${diffId} is not in the store`);
  const w = store.write();
  let result: { digest: Digest; size: number };
  try {
    // On every core (pigz, else one zlib member per 4 MiB, else zstd -T): one core managed ~25 MB/s of gzip.
    await compressLayerStream(store.read(diffId), w.stream, {
      format,
      ...(opts.level !== undefined ? { level: opts.level } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    result = await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
  await writeFileAtomic(path, JSON.stringify({ digest: result.digest, size: result.size }) + "\n", { tmpDir: layout.tmpDir });
  return { mediaType, digest: result.digest, size: result.size };
}
