// --cache-to/--cache-from type=local: cache records and their blobs in an OCI image layout directory, so CI jobs can
// carry the cache between machines as a plain directory. Exports merge with what the directory already holds.
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { jsonBytes, sha256Digest } from "../image/json.js";
import { MediaType, type Descriptor, type Digest, type Index, type Manifest } from "../image/types.js";
import type { ContentStore } from "../store/types.js";
import { StoreError, throwIfAborted } from "../errors.js";
import { openDirWriter } from "../exporter/layout-writer.js";
import { ANNOTATION_REF_NAME } from "../exporter/oci-layout.js";
import { CACHE_ARTIFACT_TYPE, cacheBlobs, cacheManifest, mergeCacheConfigs, parseCacheConfig, type CacheConfig } from "./cache-manifest.js";
import { cacheSource, type CacheSource } from "./cache-source.js";
import { errnoCode } from "../util/errno.js";

const CACHE_TAG = "cache";

function blobFile(dir: string, d: Digest): string {
  return join(dir, "blobs", "sha256", d.slice("sha256:".length));
}

async function readJsonFile(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, "utf8"));
}

/** The cache config a layout directory holds, or undefined when it holds none (absent dir, or no cache manifest). */
export async function readLocalCache(dir: string): Promise<CacheConfig | undefined> {
  let index: Index;
  try {
    index = (await readJsonFile(join(dir, "index.json"))) as Index;
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw new StoreError("BAD_CACHE", `cache directory ${dir}: index.json is not valid JSON`, { hint: "remove the directory, or point --cache-from at a directory written by --cache-to type=local" });
  }
  const desc = (index.manifests ?? []).find((m) => m.annotations?.[ANNOTATION_REF_NAME] === CACHE_TAG || (m as { artifactType?: string }).artifactType === CACHE_ARTIFACT_TYPE);
  if (!desc) return undefined;
  try {
    const manifest = (await readJsonFile(blobFile(dir, desc.digest))) as Manifest;
    return parseCacheConfig(await readJsonFile(blobFile(dir, manifest.config.digest)));
  } catch {
    throw new StoreError("BAD_CACHE", `cache directory ${dir} is damaged: its cache manifest or config cannot be read`, { hint: "remove the directory and export the cache again" });
  }
}

/** --cache-from type=local,src=DIR; undefined (with nothing to import) when DIR holds no cache yet. */
export async function openLocalCacheSource(dir: string): Promise<CacheSource | undefined> {
  const cfg = await readLocalCache(dir);
  if (!cfg) return undefined;
  return cacheSource(`type=local,src=${dir}`, cfg, async (blob, content, signal) => {
    throwIfAborted(signal);
    const file = blobFile(dir, blob.digest);
    const w = content.write(blob.digest);
    try {
      await pipeline(createReadStream(file), w.stream, { signal });
      // commit() verifies the sha256 against the expected digest: a damaged cache blob is never stored.
      const got = await w.commit();
      if (got.size !== blob.size) throw new StoreError("BAD_CACHE", `cache blob ${blob.digest} in ${dir} has ${got.size} bytes, its record says ${blob.size}`);
    } catch (e) {
      await w.abort();
      throw e;
    }
  });
}

/** --cache-to type=local,dest=DIR: writes the records and their blobs, merged with the directory's earlier cache. */
export async function writeLocalCache(dir: string, content: ContentStore, cfg: CacheConfig, signal?: AbortSignal): Promise<{ records: number; blobs: number }> {
  const merged = mergeCacheConfigs(await readLocalCache(dir).catch(() => undefined), cfg);
  const w = await openDirWriter(dir, signal);
  // Records from an earlier export stay only while their blobs are still in the directory.
  const blobs: Descriptor[] = [];
  const kept: CacheConfig = { v: 1, steps: [], images: [] };
  const inDir = async (d: Descriptor) => (await stat(blobFile(dir, d.digest)).catch(() => undefined))?.size === d.size;
  const fromStore = new Set(cacheBlobs(cfg).map((b) => b.digest));
  for (const b of cacheBlobs(merged)) {
    if (fromStore.has(b.digest)) {
      await w.addBlob(`blobs/sha256/${b.digest.slice(7)}`, content, b.digest, b.size);
      blobs.push(b);
    } else if (await inDir(b)) blobs.push(b);
  }
  const present = new Set(blobs.map((b) => b.digest));
  kept.steps = merged.steps.filter((s) => !s.layer || present.has(s.layer.diffId));
  kept.images = merged.images.filter((i) => present.has(i.manifest.digest) && present.has(i.config.digest));
  const configBytes = jsonBytes(kept);
  const configDigest = sha256Digest(configBytes);
  await w.addBytes(`blobs/sha256/${configDigest.slice(7)}`, configBytes);
  const manifestBytes = jsonBytes(cacheManifest({ digest: configDigest, size: configBytes.length }, cacheBlobs(kept)));
  const manifestDigest = sha256Digest(manifestBytes);
  await w.addBytes(`blobs/sha256/${manifestDigest.slice(7)}`, manifestBytes);
  await w.addBytes("oci-layout", jsonBytes({ imageLayoutVersion: "1.0.0" }));
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [{ mediaType: MediaType.OciManifest, digest: manifestDigest, size: manifestBytes.length, annotations: { [ANNOTATION_REF_NAME]: CACHE_TAG } }],
  };
  // index.json last, atomically: a killed export leaves the previous cache readable.
  await w.addBytes("index.json", jsonBytes(index));
  await w.finish();
  return { records: kept.steps.length + kept.images.length, blobs: blobs.length };
}
