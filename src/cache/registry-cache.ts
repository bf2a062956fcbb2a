// --cache-to/--cache-from type=registry: the same cache artifact as the local backend, stored in a registry under a
// tag, so a fleet of CI machines shares one cache. An importer downloads a layer only when a step hits on it.
import { pipeline } from "node:stream/promises";
import { jsonBytes, sha256Digest } from "../image/json.js";
import { MediaType, type Descriptor, type Manifest } from "../image/types.js";
import { parseReference } from "../image/reference.js";
import type { ContentStore } from "../store/types.js";
import { RegistryError, throwIfAborted } from "../errors.js";
import { openRegistry, type RegistryOptions, type Repository } from "../registry/client.js";
import { storeBlobSource } from "../registry/blob-source.js";
import { CACHE_CONFIG_TYPE, cacheBlobs, cacheManifest, mergeCacheConfigs, parseCacheConfig, type CacheConfig } from "./cache-manifest.js";
import { cacheSource, type CacheSource } from "./cache-source.js";

const MAX_CONFIG = 64 * 1024 * 1024;

function target(ref: string): { registry: string; repository: string; tag: string; familiar: string } {
  const r = parseReference(ref);
  if (r.digest !== undefined) throw new RegistryError("BAD_CACHE_REF", `cache reference ${ref} names a digest; give a tag (e.g. host/repo:cache)`);
  return { registry: r.registry, repository: r.repository, tag: r.tag ?? "latest", familiar: r.familiar };
}

async function readRemote(repo: Repository, tag: string, familiar: string, signal?: AbortSignal): Promise<CacheConfig | undefined> {
  let manifest: Manifest;
  try {
    const m = await repo.getManifest(tag, { accept: [MediaType.OciManifest], ...(signal ? { signal } : {}) });
    manifest = JSON.parse(m.bytes.toString("utf8")) as Manifest;
  } catch (e) {
    if (e instanceof RegistryError && e.code === "IMAGE_NOT_FOUND") return undefined;
    throw e;
  }
  if (manifest.config?.mediaType !== CACHE_CONFIG_TYPE)
    throw new RegistryError("BAD_CACHE", `${familiar} is not a tsbuild cache (its config is ${manifest.config?.mediaType})`, { hint: "use a tag of its own for the cache, e.g. host/repo:buildcache" });
  if (manifest.config.size > MAX_CONFIG) throw new RegistryError("BAD_CACHE", `the cache config of ${familiar} claims ${manifest.config.size} bytes`);
  const chunks: Buffer[] = [];
  for await (const c of repo.getBlob(manifest.config.digest, { size: manifest.config.size, what: `cache config of ${familiar}`, ...(signal ? { signal } : {}) })) chunks.push(c as Buffer);
  const cfg = parseCacheConfig(JSON.parse(Buffer.concat(chunks).toString("utf8")));
  if (!cfg) throw new RegistryError("BAD_CACHE", `the cache config of ${familiar} is not valid`);
  return cfg;
}

/** Undefined when the registry has no cache under that tag yet. */
export async function openRegistryCacheSource(ref: string, opts: RegistryOptions & { signal?: AbortSignal }): Promise<(CacheSource & { close(): void }) | undefined> {
  const t = target(ref);
  const session = openRegistry(t.registry, opts);
  try {
    const repo = session.repository(t.repository);
    const cfg = await readRemote(repo, t.tag, t.familiar, opts.signal);
    if (!cfg) {
      session.close();
      return undefined;
    }
    const source = cacheSource(`type=registry,ref=${t.familiar}`, cfg, async (blob, content, signal) => {
      throwIfAborted(signal);
      const w = content.write(blob.digest);
      try {
        // getBlob verifies size and digest as it streams; commit() checks the digest once more before the rename.
        await pipeline(repo.getBlob(blob.digest, { size: blob.size, signal, what: `cached layer ${blob.digest}` }), w.stream, { signal });
        await w.commit();
      } catch (e) {
        await w.abort();
        throw e;
      }
    });
    return { ...source, close: () => session.close() };
  } catch (e) {
    session.close();
    throw e;
  }
}

/** Pushes the records' blobs (skipping those present), the merged config and the manifest under the tag. */
export async function writeRegistryCache(
  ref: string,
  content: ContentStore,
  cfg: CacheConfig,
  opts: RegistryOptions & { signal?: AbortSignal },
): Promise<{ records: number; blobs: number; uploaded: number; digest: string }> {
  const t = target(ref);
  const session = openRegistry(t.registry, opts);
  const signal = opts.signal;
  const so = signal ? { signal } : {};
  try {
    const repo = session.repository(t.repository);
    const older = await readRemote(repo, t.tag, t.familiar, signal).catch(() => undefined);
    const merged = mergeCacheConfigs(older, cfg);
    const ours = new Set(cacheBlobs(cfg).map((b) => b.digest));
    const present = new Set<string>();
    let uploaded = 0;
    for (const b of cacheBlobs(merged)) {
      throwIfAborted(signal);
      if (ours.has(b.digest)) {
        const r = await repo.putBlob(storeBlobSource(content, b.digest, b.size), so);
        if (r.uploaded) uploaded++;
        present.add(b.digest);
      } else if ((await repo.hasBlob(b.digest, so)) === b.size) present.add(b.digest);
    }
    const kept: CacheConfig = {
      v: 1,
      steps: merged.steps.filter((s) => !s.layer || present.has(s.layer.diffId)),
      images: merged.images.filter((i) => present.has(i.manifest.digest) && present.has(i.config.digest)),
    };
    const configBytes = jsonBytes(kept);
    const config = await repo.putBlob(configBytes, so);
    const blobs: Descriptor[] = cacheBlobs(kept);
    const manifestBytes = jsonBytes(cacheManifest({ digest: config.digest, size: config.size }, blobs));
    const digest = await repo.putManifest(t.tag, manifestBytes, MediaType.OciManifest, so);
    if (digest !== sha256Digest(manifestBytes)) throw new RegistryError("BAD_MANIFEST", `the registry stored the cache manifest of ${t.familiar} under another digest (${digest})`);
    return { records: kept.steps.length + kept.images.length, blobs: blobs.length, uploaded, digest };
  } finally {
    session.close();
  }
}
