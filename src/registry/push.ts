// Push a local image to a registry: layers compressed once (gzip or zstd, cached by diff_id), blobs the registry already
// has are skipped (HEAD), blobs known to exist in another repository of the same registry are cross-mounted,
// the rest uploaded (monolithic or chunked); then the config and the manifest (OCI or Docker schema 2).
import { withBuildLock } from "../store/locks.js";
import pLimit from "p-limit";
import { setMaxListeners } from "node:events";
import { AbortError, RegistryError, StoreError, throwIfAborted } from "../errors.js";
import type { Engine } from "../engine.js";
import { jsonBytes, sha256Digest } from "../image/json.js";
import { isIndexMediaType, isUncompressedLayer, layerCompression } from "../image/media-types.js";
import { normalizeName, parseReference } from "../image/reference.js";
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest } from "../image/types.js";
import type { LayerCompressionChoice } from "../layer/compression-options.js";
import { compressedLayer } from "../layer/store-layer.js";
import { storeBlobSource } from "./blob-source.js";
import { openRegistry, type Repository } from "./client.js";
import { readLayerSources, recordLayerSource } from "./layer-sources.js";
import { manifestMediaType, mediaTypeFor, type ImageFormat } from "./media-types.js";
import type { RegistryCommandOptions } from "./pull.js";

export interface PushOptions extends RegistryCommandOptions {
  /** Manifest family: "oci" (default) or "docker" (v2 schema 2). */
  format?: ImageFormat;
  /** Layers compressed/uploaded at once (default 3). */
  concurrency?: number;
  /** Local layers' compression (default gzip, level 6, cached forms reused); buildx's compression options. */
  compression?: LayerCompressionChoice;
}

export interface PushedImage {
  /** Digest of the pushed manifest (what `name@digest` pulls). */
  digest: Digest;
  /** Size of the pushed manifest in bytes. */
  size: number;
  /** Per layer: uploaded, already present, or mounted from another repository. */
  layers: ("uploaded" | "present" | "mounted")[];
}

/** A local image to push: one manifest, or (multi-platform) an index's manifests with their platforms. */
type LocalImage = { manifest: Manifest; config: ImageConfig } | { index: Index; children: { desc: Descriptor; manifest: Manifest }[] };

async function checkLayers(engine: Engine, name: string, manifest: Manifest): Promise<void> {
  for (const l of manifest.layers) {
    if (!(await engine.content.has(l.digest))) {
      throw new StoreError("BLOB_MISSING", `image ${name}: layer ${l.digest} is missing from the local store`, {
        hint: "rebuild or pull the image again, then push",
      });
    }
  }
}

async function localImage(engine: Engine, name: string): Promise<LocalImage> {
  const normalized = normalizeName(name);
  const rec = await engine.images.get(normalized);
  if (!rec) {
    throw new StoreError("IMAGE_NOT_FOUND", `no such image in the local store: ${name}`, {
      hint: "build it with `tsbuild build -t NAME`, or `tsbuild pull`/`tsbuild load` it first",
    });
  }
  if (isIndexMediaType(rec.target.mediaType)) {
    // Every platform goes: the index and all its manifests (as buildx --push does).
    const index = await engine.content.readJson<Index>(rec.target.digest);
    const children: { desc: Descriptor; manifest: Manifest }[] = [];
    for (const d of index.manifests) {
      const manifest = await engine.content.readJson<Manifest>(d.digest);
      if (!manifest.config || !Array.isArray(manifest.layers))
        throw new StoreError("UNSUPPORTED_MEDIA_TYPE", `${name}: index entry ${d.digest} is not an image manifest (${d.mediaType})`);
      await checkLayers(engine, name, manifest);
      children.push({ desc: d, manifest });
    }
    return { index, children };
  }
  const manifest = await engine.content.readJson<Manifest>(rec.target.digest);
  if (!manifest.config || !Array.isArray(manifest.layers))
    throw new StoreError("UNSUPPORTED_MEDIA_TYPE", `${name} is not a single image manifest (${rec.target.mediaType})`);
  const config = await engine.content.readJson<ImageConfig>(manifest.config.digest);
  await checkLayers(engine, name, manifest);
  return { manifest, config };
}

/** The store file behind an errno error from reading a blob during the push, if that is what failed. */
function storeFileError(e: unknown, root: string): string | undefined {
  for (let c: unknown = e, i = 0; c !== undefined && c !== null && i < 8; c = (c as { cause?: unknown }).cause, i++) {
    const err = c as NodeJS.ErrnoException;
    if (typeof err.code === "string" && typeof err.path === "string" && err.path.startsWith(root + "/")) return err.path;
  }
  return undefined;
}

/**
 * Push `localName` to `target`, holding the store's shared lock for the duration so a prune cannot remove the blobs
 * being uploaded.
 */
export function pushImage(engine: Engine, localName: string, target: string, opts: PushOptions = {}): Promise<PushedImage> {
  // A bad name fails at once, not after waiting for a prune.
  parseReference(target);
  return withBuildLock(engine.root, opts.signal, () => pushImageLocked(engine, localName, target, opts));
}

/** pushImage for a caller that already holds the store's shared lock (buildImage pushing what it built). */
export async function pushImageLocked(engine: Engine, localName: string, target: string, opts: PushOptions = {}): Promise<PushedImage> {
  try {
    return await pushImageUnchecked(engine, localName, target, opts);
  } catch (e) {
    // A blob that vanished from the store under the upload is a store problem, not a network one.
    const file = storeFileError(e, engine.root);
    if (file === undefined) throw e;
    throw new StoreError("BLOB_MISSING", `pushing ${localName}: the local store lost ${file} during the push (${(e as Error).message})`, {
      hint: "was the image removed and the store pruned meanwhile? build, pull or load it again, then push",
      cause: e,
    });
  }
}

async function pushImageUnchecked(engine: Engine, localName: string, target: string, opts: PushOptions): Promise<PushedImage> {
  const { signal } = opts;
  const progress = opts.progress ?? engine.progress;
  const format = opts.format ?? "oci";
  const ref = parseReference(target);
  if (ref.digest !== undefined) {
    throw new RegistryError("PUSH_TO_DIGEST", `cannot push to ${target}: a digest names content, push to a tag instead`, {
      hint: "e.g. tsbuild push IMAGE host/repo:tag",
    });
  }
  const tag = ref.tag ?? "latest";
  const local = await localImage(engine, localName);
  const session = openRegistry(ref.registry, opts);
  try {
    const repo = session.repository(ref.repository, { push: true });
    progress.emit({ kind: "info", message: `pushing ${ref.familiar}` });
    if ("manifest" in local) return await pushManifest(engine, repo, ref, local.manifest, tag, format, opts);
    // Manifests first (by digest), the index under the tag last: a reader never sees an index naming missing manifests.
    const entries: Descriptor[] = [];
    const layers: PushedImage["layers"] = [];
    for (const c of local.children) {
      const r = await pushManifest(engine, repo, ref, c.manifest, undefined, format, opts);
      layers.push(...r.layers);
      entries.push({
        mediaType: manifestMediaType(format),
        digest: r.digest,
        size: r.size,
        ...(c.desc.annotations ? { annotations: c.desc.annotations } : {}),
        ...(c.desc.platform ? { platform: c.desc.platform } : {}),
      });
    }
    const index: Index = {
      schemaVersion: 2,
      mediaType: format === "oci" ? MediaType.OciIndex : MediaType.DockerManifestList,
      manifests: entries,
      ...(format === "oci" && local.index.annotations ? { annotations: local.index.annotations } : {}),
    };
    const bytes = jsonBytes(index);
    const digest = await repo.putManifest(tag, bytes, index.mediaType as string, signal ? { signal } : {});
    progress.emit({ kind: "info", message: `pushed ${ref.familiar}: ${digest} (index of ${entries.length} platforms)` });
    return { digest, size: bytes.length, layers };
  } finally {
    session.close();
  }
}

/** Push one image manifest's layers, config and the manifest itself: under `tag`, or (undefined) by its digest. */
async function pushManifest(
  engine: Engine,
  repo: Repository,
  ref: ReturnType<typeof parseReference>,
  manifest: Manifest,
  tag: string | undefined,
  format: ImageFormat,
  opts: PushOptions,
): Promise<PushedImage> {
  const { signal } = opts;
  const progress = opts.progress ?? engine.progress;
  {
    const limit = pLimit(Math.max(1, opts.concurrency ?? 3));
    const outcome: PushedImage["layers"] = [];
    // The first failing layer stops the others before the error is reported.
    const inner = new AbortController();
    // Every concurrent request listens on it (node:http adds one listener per request).
    setMaxListeners(256, inner.signal);
    const onOuter = () => inner.abort();
    signal?.addEventListener("abort", onOuter, { once: true });
    let results: PromiseSettledResult<Descriptor>[];
    try {
      results = await Promise.allSettled(
        manifest.layers.map((l, i) =>
          limit(async () => {
            throwIfAborted(inner.signal);
            const r = await pushLayer(engine, repo, ref.registry, l, opts.compression, inner.signal);
            outcome[i] = r.how;
            progress.emit({ kind: "info", message: `${ref.familiar}: layer ${i + 1}/${manifest.layers.length} ${r.how} (${r.desc.digest})` });
            return { ...r.desc, mediaType: mediaTypeFor(format, r.desc.mediaType) };
          }).catch((e: unknown) => {
            inner.abort();
            throw e;
          }),
        ),
      );
    } finally {
      signal?.removeEventListener("abort", onOuter);
    }
    throwIfAborted(signal);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason as unknown);
    if (failed.length > 0) {
      // Report the cause, not the sibling uploads it cancelled: those end with our AbortError or with node's
      // AbortError ("The operation was aborted") from a stream or request that listened on the same signal.
      throw failed.find((e) => !(e instanceof AbortError) && !((e as Error).name === "AbortError")) ?? failed[0];
    }
    const layers = results.map((r) => (r as PromiseFulfilledResult<Descriptor>).value);
    const cfg = manifest.config;
    if (!(await reuseKnownBlob(engine, repo, ref.registry, cfg.digest, undefined, signal))) {
      await repo.putBlob(storeBlobSource(engine.content, cfg.digest, cfg.size), signal ? { signal } : {});
      await recordLayerSource(engine.root, cfg.digest, {
        registry: ref.registry,
        repository: repo.name,
        digest: cfg.digest,
        size: cfg.size,
        mediaType: MediaType.OciConfig,
      });
    }
    const remote: Manifest = {
      schemaVersion: 2,
      mediaType: manifestMediaType(format),
      config: { mediaType: format === "oci" ? MediaType.OciConfig : MediaType.DockerConfig, digest: manifest.config.digest, size: manifest.config.size },
      layers,
      // --annotation's manifest annotations travel with it (docker's schema 2 has no such field).
      ...(format === "oci" && manifest.annotations && Object.keys(manifest.annotations).length ? { annotations: manifest.annotations } : {}),
    };
    const bytes = jsonBytes(remote);
    const digest = await repo.putManifest(tag ?? sha256Digest(bytes), bytes, remote.mediaType, signal ? { signal } : {});
    progress.emit({ kind: "info", message: `pushed ${ref.familiar}${tag ? "" : " manifest"}: ${digest}` });
    return { digest, size: bytes.length, layers: outcome };
  }
}

/** One layer: reuse what the registry has (same repository or a mount), else compress (cached) and upload. */
async function pushLayer(
  engine: Engine,
  repo: Repository,
  registry: string,
  layer: Descriptor,
  compression: LayerCompressionChoice | undefined,
  signal: AbortSignal | undefined,
): Promise<{ desc: Descriptor; how: "uploaded" | "present" | "mounted" }> {
  const o = signal ? { signal } : {};
  if (!isUncompressedLayer(layer.mediaType)) {
    // Already a compressed blob in the store (not produced by tsbuild today, but a valid local manifest).
    const r = await repo.putBlob(storeBlobSource(engine.content, layer.digest, layer.size), o);
    return { desc: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, how: r.uploaded ? "uploaded" : "present" };
  }
  const diffId = layer.digest;
  if (compression?.compression === "uncompressed") {
    const r = await repo.putBlob(storeBlobSource(engine.content, diffId, layer.size), o);
    return { desc: { mediaType: MediaType.OciLayer, digest: diffId, size: layer.size }, how: r.uploaded ? "uploaded" : "present" };
  }
  // A blob the registry already has is reused, unless the compression was asked for: then only one in that format,
  // and none at all with force-compression (BuildKit's force-compression=true recompresses).
  const wanted = compression ? (compression.force ? "none" : compression.compression) : undefined;
  const reused = wanted === "none" ? undefined : await reuseKnownBlob(engine, repo, registry, diffId, wanted, signal);
  if (reused) return reused;
  const gz = await compressedLayer(engine.content, diffId, {
    ...o,
    ...(compression ? { format: compression.compression } : {}),
    ...(compression?.level !== undefined ? { level: compression.level } : {}),
    ...(compression?.force ? { force: true } : {}),
  });
  const r = await repo.putBlob(storeBlobSource(engine.content, gz.digest, gz.size), o);
  const how = r.uploaded ? "uploaded" : "present";
  await recordLayerSource(engine.root, diffId, { registry, repository: repo.name, digest: gz.digest, size: gz.size, mediaType: gz.mediaType });
  return { desc: gz, how };
}

/**
 * A blob this registry is known to hold (recorded at pull or push, keyed by the local digest): present in the
 * target repository already, or cross-mounted from the repository that has it. Undefined when neither works.
 */
async function reuseKnownBlob(
  engine: Engine,
  repo: Repository,
  registry: string,
  localDigest: Digest,
  format: "gzip" | "zstd" | undefined,
  signal: AbortSignal | undefined,
): Promise<{ desc: Descriptor; how: "present" | "mounted" } | undefined> {
  const o = signal ? { signal } : {};
  for (const s of await readLayerSources(engine.root, localDigest)) {
    if (s.registry !== registry) continue;
    if (format !== undefined && layerCompression(s.mediaType) !== format) continue;
    const desc = { mediaType: s.mediaType, digest: s.digest, size: s.size };
    if (s.repository === repo.name) {
      if ((await repo.hasBlob(s.digest, o)) !== undefined) return { desc, how: "present" };
    } else if (await repo.mountBlob(s.digest, s.repository, o)) {
      await recordLayerSource(engine.root, localDigest, { ...s, repository: repo.name });
      return { desc, how: "mounted" };
    }
  }
  return undefined;
}
