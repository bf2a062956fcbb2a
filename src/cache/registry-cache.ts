// --cache-to/--cache-from type=registry: the same cache artifact as the local backend, stored in a registry under a
// tag, so a fleet of CI machines shares one cache. An importer downloads a layer only when a step hits on it.
import { pipeline } from "node:stream/promises";
import { jsonBytes, sha256Digest } from "../image/json.js";
import { MediaType, type Descriptor, type Manifest } from "../image/types.js";
import { parseReference } from "../image/reference.js";
import type { ContentStore } from "../store/types.js";
import { RegistryError, throwIfAborted } from "../errors.js";
import { MANIFEST_ACCEPT, openRegistry, type FetchedManifest, type RegistryOptions, type Repository } from "../registry/client.js";
import { storeBlobSource } from "../registry/blob-source.js";
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

const MAX_CONFIG = 64 * 1024 * 1024;

function target(ref: string): { registry: string; repository: string; tag: string; familiar: string } {
  const r = parseReference(ref);
  if (r.digest !== undefined) throw new RegistryError("BAD_CACHE_REF", `cache reference ${ref} names a digest; give a tag (e.g. host/repo:cache)`);
  return { registry: r.registry, repository: r.repository, tag: r.tag ?? "latest", familiar: r.familiar };
}

/** What a cache tag points to: nothing, or a tsbuild cache (`cfg` undefined when its config is damaged). */
type RemoteState = { kind: "none" } | { kind: "cache"; cfg: CacheConfig | undefined; damage?: string };

const INDEX_TYPES = new Set<string>([MediaType.OciIndex, MediaType.DockerManifestList]);
const IMAGE_CONFIGS = new Set<string>([MediaType.OciConfig, MediaType.DockerConfig]);

/** Exporting reads the tag first: the messages say what happens to it. */
type Purpose = "import" | "export";

function notACache(familiar: string, what: string, purpose: Purpose): RegistryError {
  return purpose === "export"
    ? new RegistryError("NOT_A_CACHE", `${familiar} is ${what}, not a tsbuild cache; nothing was pushed`, {
        hint: `pick another ref for the cache, e.g. ${familiar}-cache or a tag of its own such as :buildcache`,
      })
    : new RegistryError("NOT_A_CACHE", `${familiar} is ${what}, not a tsbuild cache`, {
        hint: "give the ref the cache was exported to with --cache-to type=registry",
      });
}

/**
 * Looks at what the tag points to. Only a 404 means "no cache yet"; an image, an index or another tool's artifact
 * is a RegistryError NOT_A_CACHE; auth failures, 5xx and network errors propagate as they are.
 */
async function inspectRemote(repo: Repository, tag: string, familiar: string, purpose: Purpose, signal?: AbortSignal): Promise<RemoteState> {
  let fetched: FetchedManifest;
  try {
    // Every manifest type: asked for one type only, a registry may answer an index with one of its images.
    fetched = await repo.getManifest(tag, { accept: MANIFEST_ACCEPT, ...(signal ? { signal } : {}) });
  } catch (e) {
    if (e instanceof RegistryError && e.code === "IMAGE_NOT_FOUND") return { kind: "none" };
    throw e;
  }
  let manifest: Manifest & { artifactType?: string };
  try {
    manifest = JSON.parse(fetched.bytes.toString("utf8")) as Manifest & { artifactType?: string };
  } catch {
    throw notACache(familiar, `a manifest that is not JSON (${fetched.mediaType || "no media type"})`, purpose);
  }
  if (!manifest || typeof manifest !== "object")
    throw notACache(familiar, `a manifest that is not a JSON object (${fetched.mediaType || "no media type"})`, purpose);
  const mediaType = (manifest as { mediaType?: string }).mediaType ?? fetched.mediaType;
  if (INDEX_TYPES.has(mediaType) || INDEX_TYPES.has(fetched.mediaType) || Array.isArray((manifest as { manifests?: unknown }).manifests))
    throw notACache(familiar, "an image index", purpose);
  const configType = manifest.config?.mediaType;
  if (configType !== CACHE_CONFIG_TYPE && manifest.artifactType !== CACHE_ARTIFACT_TYPE) {
    if (configType !== undefined && IMAGE_CONFIGS.has(configType)) throw notACache(familiar, "an image", purpose);
    throw notACache(familiar, `an artifact of another kind (config ${configType ?? "missing"})`, purpose);
  }
  if (!manifest.config || !Number.isInteger(manifest.config.size)) return { kind: "cache", cfg: undefined, damage: "its manifest names no config" };
  if (manifest.config.size > MAX_CONFIG) return { kind: "cache", cfg: undefined, damage: `its config claims ${manifest.config.size} bytes` };
  const chunks: Buffer[] = [];
  try {
    for await (const c of repo.getBlob(manifest.config.digest, {
      size: manifest.config.size,
      what: `cache config of ${familiar}`,
      ...(signal ? { signal } : {}),
    }))
      chunks.push(c as Buffer);
  } catch (e) {
    // A lost or corrupt config blob is a damaged cache; auth, 5xx and network trouble are not.
    if (e instanceof RegistryError && (e.code === "BLOB_NOT_FOUND" || e.code === "DIGEST_MISMATCH" || e.code === "SIZE_MISMATCH"))
      return { kind: "cache", cfg: undefined, damage: e.message };
    throw e;
  }
  let cfg: CacheConfig | undefined;
  try {
    cfg = parseCacheConfig(JSON.parse(Buffer.concat(chunks).toString("utf8")));
  } catch {
    cfg = undefined;
  }
  return cfg ? { kind: "cache", cfg } : { kind: "cache", cfg: undefined, damage: "its config is not valid" };
}

/** Undefined when the registry has no cache under that tag yet (404); a foreign, damaged or unreadable one throws. */
export async function openRegistryCacheSource(
  ref: string,
  opts: RegistryOptions & { signal?: AbortSignal },
): Promise<(CacheSource & { close(): void }) | undefined> {
  const t = target(ref);
  const session = openRegistry(t.registry, opts);
  try {
    const repo = session.repository(t.repository);
    const state = await inspectRemote(repo, t.tag, t.familiar, "import", opts.signal);
    if (state.kind === "none") {
      session.close();
      return undefined;
    }
    const cfg = state.cfg;
    if (!cfg)
      throw new RegistryError("BAD_CACHE", `the cache ${t.familiar} is damaged: ${state.damage ?? "its config cannot be read"}`, {
        hint: "export the cache there again (--cache-to replaces a damaged cache)",
      });
    const source = cacheSource(
      `type=registry,ref=${t.familiar}`,
      cfg,
      async (blob, content, signal) => {
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
      },
      (blob, signal) => repo.getBlob(blob.digest, { size: blob.size, signal, what: `cache mount ${blob.digest}` }),
    );
    return { ...source, close: () => session.close() };
  } catch (e) {
    session.close();
    throw e;
  }
}

/**
 * Pushes the records' blobs (skipping those present), the merged config and the manifest under the tag. A tag
 * holding anything but a tsbuild cache is refused (RegistryError NOT_A_CACHE) and nothing is pushed.
 */
export async function writeRegistryCache(
  ref: string,
  content: ContentStore,
  cfg: CacheConfig,
  opts: RegistryOptions & { signal?: AbortSignal },
): Promise<{ records: number; mounts: number; blobs: number; uploaded: number; digest: string }> {
  const t = target(ref);
  const session = openRegistry(t.registry, opts);
  const signal = opts.signal;
  const so = signal ? { signal } : {};
  try {
    const repo = session.repository(t.repository);
    // Refuses (before any upload) when the tag is not a cache; a damaged cache of ours is replaced.
    const before = await inspectRemote(repo, t.tag, t.familiar, "export", signal);
    const merged = mergeCacheConfigs(before.kind === "cache" ? before.cfg : undefined, cfg);
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
    const kept = keepPresent(merged, present);
    const configBytes = jsonBytes(kept);
    const config = await repo.putBlob(configBytes, so);
    const blobs: Descriptor[] = cacheBlobs(kept);
    const manifestBytes = jsonBytes(cacheManifest({ digest: config.digest, size: config.size }, blobs));
    const digest = await repo.putManifest(t.tag, manifestBytes, MediaType.OciManifest, so);
    if (digest !== sha256Digest(manifestBytes))
      throw new RegistryError("BAD_MANIFEST", `the registry stored the cache manifest of ${t.familiar} under another digest (${digest})`);
    return { records: kept.steps.length + kept.images.length, mounts: kept.mounts?.length ?? 0, blobs: blobs.length, uploaded, digest };
  } finally {
    session.close();
  }
}
