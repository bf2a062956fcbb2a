// --cache-to/--cache-from type=local: cache records and their blobs in an OCI image layout directory, so CI jobs can
// carry the cache between machines as a plain directory. The cache is one index.json entry under a tag (ref.name);
// every other entry, e.g. an image exported there with -o type=oci, is kept as it is (BuildKit's client/ociindex).
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
import {
  CACHE_ARTIFACT_TYPE,
  CACHE_CONFIG_TYPE,
  cacheBlobs,
  cacheManifest,
  keepPresent,
  mergeCacheConfigs,
  parseCacheConfig,
  type CacheConfig,
} from "./cache-manifest.js";
import { cacheSource, type CacheSource } from "./cache-source.js";
import { errnoCode } from "../util/errno.js";

/** The ref.name of the cache entry unless the spec says tag=. Not BuildKit's "latest": that is the tag images get. */
export const DEFAULT_LOCAL_CACHE_TAG = "cache";

type IndexEntry = Descriptor & { artifactType?: string };

/** What a layout directory holds under the cache tag. */
type LocalState =
  | { kind: "none"; index: Index | undefined }
  /** `cfg` undefined: the cache's manifest or config is damaged (`damage` says how). */
  | { kind: "cache"; index: Index; cfg: CacheConfig | undefined; damage?: string };

function blobFile(dir: string, d: Digest): string {
  return join(dir, "blobs", "sha256", d.slice("sha256:".length));
}

async function readJsonFile(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, "utf8"));
}

/** index.json, or undefined when the directory (or its index.json) does not exist. */
async function readIndex(dir: string): Promise<Index | undefined> {
  const file = join(dir, "index.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    throw new StoreError("BAD_CACHE", `cache directory ${dir}: cannot read index.json (${code ?? (e as Error).message})`, {
      cause: e,
      hint: "check the path and its permissions",
    });
  }
  let index: Index;
  try {
    index = JSON.parse(text) as Index;
  } catch (e) {
    throw new StoreError("BAD_CACHE", `cache directory ${dir}: index.json is not valid JSON`, {
      cause: e,
      hint: "point the cache at a directory of its own, or remove the broken index.json",
    });
  }
  if (!index || typeof index !== "object" || (index.manifests !== undefined && !Array.isArray(index.manifests)))
    throw new StoreError("BAD_CACHE", `cache directory ${dir}: index.json is not an OCI image index`, { hint: "point the cache at a directory of its own" });
  return index;
}

/** Exporting reads the directory too: the messages say what happens to it. */
type Purpose = "import" | "export";

function notACache(dir: string, tag: string, what: string, purpose: Purpose): StoreError {
  const where = `${dir} holds ${what} under the tag ${JSON.stringify(tag)} (index.json ${ANNOTATION_REF_NAME}), not a tsbuild cache`;
  return purpose === "export"
    ? new StoreError("NOT_A_CACHE", `${where}; nothing was written`, {
        hint: `give the cache a tag of its own (e.g. --cache-to type=local,dest=${dir},tag=buildcache) or another directory`,
      })
    : new StoreError("NOT_A_CACHE", where, { hint: "give the tag the cache was exported with (tag=) or its directory" });
}

/** What a foreign manifest is, for the refusal message. */
function describeForeign(m: Manifest | undefined, mediaType: string): string {
  if (mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList) return "an image index";
  const cfg = m?.config?.mediaType;
  if (cfg === MediaType.OciConfig || cfg === MediaType.DockerConfig) return "an image";
  return `an artifact that is not ours (config ${cfg ?? "missing"})`;
}

/**
 * Reads the entry at `tag`: a tsbuild cache (its records, or undefined when damaged), nothing, or a StoreError
 * NOT_A_CACHE when something else (an image) has that tag. An unreadable index.json is a StoreError BAD_CACHE.
 */
async function inspectLocal(dir: string, tag: string, purpose: Purpose): Promise<LocalState> {
  const index = await readIndex(dir);
  const entries = ((index?.manifests ?? []) as IndexEntry[]).filter((m) => m?.annotations?.[ANNOTATION_REF_NAME] === tag);
  if (!index || entries.length === 0) return { kind: "none", index };
  let ours: { cfg: CacheConfig | undefined; damage?: string } | undefined;
  // Every entry under the tag must be a cache: replacing the tag drops them all from index.json.
  for (const desc of entries) {
    const markedOurs = desc.artifactType === CACHE_ARTIFACT_TYPE;
    if (!markedOurs && desc.mediaType !== MediaType.OciManifest) throw notACache(dir, tag, describeForeign(undefined, desc.mediaType), purpose);
    let manifest: Manifest | undefined;
    try {
      manifest = (await readJsonFile(blobFile(dir, desc.digest))) as Manifest;
    } catch {
      // Our own cache with a lost manifest can be replaced; anything unmarked we cannot vouch for.
      if (!markedOurs) throw notACache(dir, tag, `a manifest that cannot be read (${desc.digest})`, purpose);
    }
    const isCache =
      markedOurs ||
      (manifest as { artifactType?: string } | undefined)?.artifactType === CACHE_ARTIFACT_TYPE ||
      manifest?.config?.mediaType === CACHE_CONFIG_TYPE;
    if (!isCache) throw notACache(dir, tag, describeForeign(manifest, desc.mediaType), purpose);
    if (ours) continue;
    if (!manifest?.config) {
      ours = { cfg: undefined, damage: "its cache manifest cannot be read" };
      continue;
    }
    try {
      const cfg = parseCacheConfig(await readJsonFile(blobFile(dir, manifest.config.digest)));
      ours = cfg ? { cfg } : { cfg: undefined, damage: "its cache config is not valid" };
    } catch {
      ours = { cfg: undefined, damage: "its cache config cannot be read" };
    }
  }
  return { kind: "cache", index, ...(ours ?? { cfg: undefined }) };
}

/**
 * The cache config a layout directory holds under `tag`, or undefined when it holds none (absent dir, no entry
 * with that tag). A damaged cache or a foreign entry (an image) under the tag is a StoreError.
 */
export async function readLocalCache(dir: string, tag: string = DEFAULT_LOCAL_CACHE_TAG): Promise<CacheConfig | undefined> {
  const state = await inspectLocal(dir, tag, "import");
  if (state.kind === "none") return undefined;
  if (!state.cfg)
    throw new StoreError("BAD_CACHE", `cache directory ${dir} is damaged: ${state.damage ?? "its cache cannot be read"}`, {
      hint: "export the cache there again (--cache-to replaces a damaged cache)",
    });
  return state.cfg;
}

/** --cache-from type=local,src=DIR[,tag=T]; undefined (with nothing to import) when DIR holds no cache yet. */
export async function openLocalCacheSource(dir: string, tag: string = DEFAULT_LOCAL_CACHE_TAG): Promise<CacheSource | undefined> {
  const cfg = await readLocalCache(dir, tag);
  if (!cfg) return undefined;
  const open = (blob: Descriptor, signal: AbortSignal) => createReadStream(blobFile(dir, blob.digest), { signal });
  return cacheSource(
    `type=local,src=${dir}`,
    cfg,
    async (blob, content, signal) => {
      throwIfAborted(signal);
      const file = blobFile(dir, blob.digest);
      const w = content.write(blob.digest);
      try {
        await pipeline(createReadStream(file), w.stream, { signal });
        // commit() verifies the sha256 against the expected digest: a damaged cache blob is never stored.
        const got = await w.commit();
        if (got.size !== blob.size)
          throw new StoreError("BAD_CACHE", `cache blob ${blob.digest} in ${dir} has ${got.size} bytes, its record says ${blob.size}`);
      } catch (e) {
        await w.abort();
        throw e;
      }
    },
    open,
  );
}

/** Before a build: throws the StoreError writeLocalCache would (an image under the tag, a broken index.json). */
export async function checkLocalCacheTarget(dir: string, tag: string = DEFAULT_LOCAL_CACHE_TAG): Promise<void> {
  await inspectLocal(dir, tag, "export");
}

/**
 * --cache-to type=local,dest=DIR[,tag=T]: writes the records and their blobs, merged with the cache already under
 * the tag. Other index.json entries and their blobs are left alone; a foreign entry under the tag, or an
 * index.json that cannot be read, is refused before anything is written.
 */
export async function writeLocalCache(
  dir: string,
  content: ContentStore,
  cfg: CacheConfig,
  signal?: AbortSignal,
  tag: string = DEFAULT_LOCAL_CACHE_TAG,
): Promise<{ records: number; mounts: number; blobs: number }> {
  const before = await inspectLocal(dir, tag, "export");
  const merged = mergeCacheConfigs(before.kind === "cache" ? before.cfg : undefined, cfg);
  const w = await openDirWriter(dir, signal);
  // Records from an earlier export stay only while their blobs are still in the directory.
  const blobs: Descriptor[] = [];
  const inDir = async (d: Descriptor) => (await stat(blobFile(dir, d.digest)).catch(() => undefined))?.size === d.size;
  const fromStore = new Set(cacheBlobs(cfg).map((b) => b.digest));
  for (const b of cacheBlobs(merged)) {
    if (fromStore.has(b.digest)) {
      await w.addBlob(`blobs/sha256/${b.digest.slice(7)}`, content, b.digest, b.size);
      blobs.push(b);
    } else if (await inDir(b)) blobs.push(b);
  }
  const kept = keepPresent(merged, new Set(blobs.map((b) => b.digest)));
  const configBytes = jsonBytes(kept);
  const configDigest = sha256Digest(configBytes);
  await w.addBytes(`blobs/sha256/${configDigest.slice(7)}`, configBytes);
  const manifestBytes = jsonBytes(cacheManifest({ digest: configDigest, size: configBytes.length }, cacheBlobs(kept)));
  const manifestDigest = sha256Digest(manifestBytes);
  await w.addBytes(`blobs/sha256/${manifestDigest.slice(7)}`, manifestBytes);
  await w.addBytes("oci-layout", jsonBytes({ imageLayoutVersion: "1.0.0" }));
  // index.json read again just before it is replaced: an image exported there meanwhile is kept too.
  const now = await inspectLocal(dir, tag, "export");
  const others = (now.index?.manifests ?? []).filter((m) => m?.annotations?.[ANNOTATION_REF_NAME] !== tag);
  const entry: IndexEntry = {
    mediaType: MediaType.OciManifest,
    artifactType: CACHE_ARTIFACT_TYPE,
    digest: manifestDigest,
    size: manifestBytes.length,
    annotations: { [ANNOTATION_REF_NAME]: tag },
  };
  const index: Index = { ...(now.index ?? {}), schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...others, entry] };
  // index.json last, atomically: a killed export leaves the previous index (and cache) readable.
  await w.addBytes("index.json", jsonBytes(index));
  await w.finish();
  return { records: kept.steps.length + kept.images.length, mounts: kept.mounts?.length ?? 0, blobs: blobs.length };
}
