// Pull an image from a registry into the local store, in the same form `tsbuild load` gives: layers uncompressed
// (blob digest = diff_id), an OCI manifest over them, the config byte-for-byte (so the image id is the registry's),
// the name last. Layers download in parallel straight into pending store writes, verified as they stream (size
// and sha256 of the compressed bytes, then the diff_id); nothing is committed unless every layer verified.
import { withBuildLock } from "../store/locks.js";
import { imageConfigProblem } from "../image/config-check.js";
import pLimit from "p-limit";
import { setMaxListeners } from "node:events";
import { pipeline } from "node:stream/promises";
import { AbortError, RegistryError, TsbuildError, throwIfAborted } from "../errors.js";
import type { Engine } from "../engine.js";
import { jsonBytes } from "../image/json.js";
import { parseReference, type ImageReference } from "../image/reference.js";
import { isDigest, MediaType, type Descriptor, type Digest, type ImageConfig, type Manifest, type Platform } from "../image/types.js";
import { budgetedStream, decompressionBudget, decompressStream } from "../layer/compression.js";
import type { ProgressSink } from "../progress/events.js";
import type { BlobWriter } from "../store/types.js";
import { openRegistry, type RegistryOptions, type Repository } from "./client.js";
import { recordLayerSource } from "./layer-sources.js";
import { setPlatformImage } from "../store/image-index.js";
import { parseManifestDocument } from "./media-types.js";
import { isLayerMediaType } from "../image/media-types.js";
import { configPlatform, formatPlatform, hostPlatform, normalizePlatform, pickManifest, platformMatches } from "../image/platform.js";
import { verifyingStream } from "./verify-stream.js";

export interface RegistryCommandOptions extends RegistryOptions {
  signal?: AbortSignal;
  progress?: ProgressSink;
}

export interface PullOptions extends RegistryCommandOptions {
  /** The platform to pick from an index (default: the host's). */
  platform?: Platform;
  /** Layers downloaded at once (default 3). */
  concurrency?: number;
  /** Most decompressed bytes all layers together may write (default: the store's free space minus a reserve). */
  maxUncompressedBytes?: number;
}

export interface PulledImage {
  /** The normalised name the image is stored under (docker.io/library/busybox:latest). */
  name: string;
  /** The local manifest (uncompressed layers); the name may point at an index holding it with other platforms. */
  manifest: Descriptor;
  /** The config digest: the image id. */
  config: Digest;
  /** The registry's manifest digest of the chosen image (not of an index). */
  remoteDigest: Digest;
  /** How many layers were downloaded (the others were already in the store). */
  downloaded: number;
}

const MAX_CONFIG = 16 * 1024 * 1024;

async function readConfig(repo: Repository, desc: Descriptor, what: string, signal?: AbortSignal): Promise<{ bytes: Buffer; config: ImageConfig }> {
  if (typeof desc.size === "number" && desc.size > MAX_CONFIG)
    throw new RegistryError("BAD_MANIFEST", `the config of ${what} claims ${desc.size} bytes; image configs are small JSON documents`);
  const chunks: Buffer[] = [];
  const stream = repo.getBlob(desc.digest, { size: desc.size, ...(signal ? { signal } : {}), what: `the config of ${what}` });
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  const bytes = Buffer.concat(chunks);
  let config: ImageConfig;
  try {
    config = JSON.parse(bytes.toString("utf8")) as ImageConfig;
  } catch {
    throw new RegistryError("BAD_CONFIG", `the config of ${what} is not valid JSON`);
  }
  if (
    typeof config !== "object" ||
    config === null ||
    !Array.isArray(config.rootfs?.diff_ids) ||
    !config.rootfs.diff_ids.every((d) => typeof d === "string" && isDigest(d))
  ) {
    throw new RegistryError("BAD_CONFIG", `the config of ${what} has no valid rootfs.diff_ids`);
  }
  // Field types too: a crafted `"Env": [1]` fails the pull, naming the field, instead of a later build.
  const problem = imageConfigProblem(config);
  if (problem) throw new RegistryError("BAD_CONFIG", `the config of ${what} is malformed: ${problem}`);
  return { bytes, config };
}

/** Resolve the reference to one image manifest: by digest as given, else by tag; an index picks the platform. */
async function resolveManifest(
  repo: Repository,
  ref: ImageReference,
  want: Platform,
  signal?: AbortSignal,
): Promise<{ manifest: Manifest; digest: Digest; viaIndex: boolean }> {
  const what = ref.familiar;
  // A digest reference is fetched by that digest (and verified against it), never re-resolved through the tag.
  const top = await repo.getManifest(ref.digest ?? (ref.tag as string), signal ? { signal } : {});
  const doc = parseManifestDocument(top.bytes, top.mediaType, what);
  if (doc.kind === "manifest") return { manifest: doc.manifest, digest: top.digest, viaIndex: false };
  const pick = pickManifest(doc.index.manifests, want, { what, errorClass: RegistryError });
  if (!isDigest(pick.digest)) throw new RegistryError("BAD_MANIFEST", `the index of ${what} names an invalid digest ${JSON.stringify(pick.digest)}`);
  const child = await repo.getManifest(pick.digest, signal ? { signal } : {});
  if (typeof pick.size === "number" && child.bytes.length !== pick.size) {
    throw new RegistryError("SIZE_MISMATCH", `the ${formatPlatform(want)} manifest of ${what} has ${child.bytes.length} bytes, the index says ${pick.size}`);
  }
  const sub = parseManifestDocument(child.bytes, child.mediaType || pick.mediaType, `${what} (${formatPlatform(want)})`);
  if (sub.kind !== "manifest") throw new RegistryError("UNSUPPORTED_MANIFEST", `${what}: the index entry for ${formatPlatform(want)} is another index`);
  // An entry without a platform was a last resort: treat it like a single-platform image (its config is checked).
  return { manifest: sub.manifest, digest: child.digest, viaIndex: pick.platform !== undefined };
}

/**
 * Pull `reference` into the store. Holds the store's shared lock while blobs land before the name that keeps them,
 * so a concurrent prune cannot take them in between.
 */
export function pullImage(engine: Engine, reference: string, opts: PullOptions = {}): Promise<PulledImage> {
  // A bad name fails at once, not after waiting for a prune.
  parseReference(reference);
  return withBuildLock(engine.root, opts.signal, () => pullImageLocked(engine, reference, opts));
}

/** pullImage for a caller that already holds the store's shared lock (a build pulling its base image). */
export async function pullImageLocked(engine: Engine, reference: string, opts: PullOptions = {}): Promise<PulledImage> {
  const ref = parseReference(reference);
  const { signal } = opts;
  const progress = opts.progress ?? engine.progress;
  const want = opts.platform ? normalizePlatform(opts.platform) : hostPlatform();
  const session = openRegistry(ref.registry, opts);
  // Internal abort: the first failing layer stops its siblings.
  const inner = new AbortController();
  // Every concurrent request listens on it (node:http adds one listener per request).
  setMaxListeners(256, inner.signal);
  const onOuter = () => inner.abort();
  signal?.addEventListener("abort", onOuter, { once: true });
  const pending: BlobWriter[] = [];
  const committed = new Set<BlobWriter>();
  try {
    const repo = session.repository(ref.repository);
    progress.emit({ kind: "info", message: `pulling ${ref.familiar}` });
    const { manifest, digest: remoteDigest, viaIndex } = await resolveManifest(repo, ref, want, inner.signal);
    const { bytes: configBytes, config } = await readConfig(repo, manifest.config, ref.familiar, inner.signal);
    // A single-platform image is what it is; only an explicit --platform that it does not match is an error.
    if (!viaIndex && opts.platform !== undefined && !platformMatches(want, configPlatform(config))) {
      throw new RegistryError("PLATFORM_MISMATCH", `${ref.familiar} is a ${config.os}/${config.architecture} image, not ${formatPlatform(want)}`, {
        hint: "drop --platform to pull it anyway",
      });
    }
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length) {
      throw new RegistryError("DIFF_ID_COUNT", `${ref.familiar}: the manifest lists ${manifest.layers.length} layers, its config ${diffIds.length} diff_ids`);
    }
    manifest.layers.forEach((l, i) => {
      if (!isLayerMediaType(l.mediaType))
        throw new RegistryError(
          "UNSUPPORTED_MEDIA_TYPE",
          `${ref.familiar}: layer ${i + 1} has the media type ${JSON.stringify(l.mediaType)}, which is not an image layer`,
        );
      if (!isDigest(l.digest) || typeof l.size !== "number")
        throw new RegistryError("BAD_MANIFEST", `${ref.familiar}: layer ${i + 1} has no valid digest and size`);
    });

    // One download per distinct diff_id that the store does not hold yet.
    const jobs = new Map<Digest, { index: number; layer: Descriptor }>();
    for (const [i, l] of manifest.layers.entries()) {
      const d = diffIds[i] as Digest;
      if (!jobs.has(d) && !(await engine.content.has(d))) jobs.set(d, { index: i, layer: l });
    }
    const sizes = new Map<Digest, number>();
    const limit = pLimit(Math.max(1, opts.concurrency ?? 3));
    const budget = decompressionBudget(engine.content.root, opts.maxUncompressedBytes);
    const results = await Promise.allSettled(
      [...jobs].map(([diffId, { index, layer }]) =>
        limit(async () => {
          throwIfAborted(inner.signal);
          const what = `layer ${index + 1} of ${ref.familiar}`;
          const w = engine.content.write(diffId);
          pending.push(w);
          const compressed = repo.getBlob(layer.digest, { size: layer.size, signal: inner.signal, what });
          const { stream } = await decompressStream(compressed);
          const plain = verifyingStream({ digest: diffId, what: `${what} (uncompressed: its diff_id)` });
          try {
            // The budget stops a decompression bomb long before the disk fills (the diff_id is known only at the end).
            await pipeline(stream, budgetedStream(await budget, what), plain, w.stream, { signal: inner.signal });
          } catch (e) {
            if (e instanceof TsbuildError || inner.signal.aborted) throw e;
            // zlib or the zstd tool refused the bytes: the blob is corrupt (its digest check never got to run).
            throw new RegistryError("CORRUPT_LAYER", `${what} (${layer.digest}) cannot be decompressed: ${(e as Error).message}`, {
              hint: "the registry or a proxy served corrupt content; nothing was stored",
              cause: e,
            });
          }
          sizes.set(diffId, plain.bytes());
          progress.emit({ kind: "info", message: `${ref.familiar}: downloaded layer ${index + 1}/${manifest.layers.length} (${layer.size} bytes)` });
        }).catch((e: unknown) => {
          inner.abort();
          throw e;
        }),
      ),
    );
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason as unknown);
    if (failed.length > 0) {
      if (signal?.aborted) throw new AbortError();
      // Report the cause, not the sibling downloads it cancelled.
      const real = failed.find((e) => !(e instanceof AbortError) && !((e as Error).name === "AbortError")) ?? failed[0];
      if (real instanceof TsbuildError) throw real;
      throw new RegistryError("DOWNLOAD_FAILED", `pulling ${ref.familiar} failed: ${(real as Error).message}`, { cause: real });
    }
    throwIfAborted(signal);

    // Everything verified: layers, then config and manifest, the name last.
    for (const w of pending) {
      await w.commit();
      committed.add(w);
    }
    const cfg = await engine.content.putBytes(configBytes, manifest.config.digest);
    const layers: Descriptor[] = [];
    for (const d of diffIds) {
      const size = sizes.get(d) ?? (await engine.content.size(d));
      if (size === undefined) throw new RegistryError("BLOB_MISSING", `layer ${d} vanished from the store during the pull`);
      layers.push({ mediaType: MediaType.OciLayer, digest: d, size });
    }
    const local: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
      layers,
    };
    const put = await engine.content.putBytes(jsonBytes(local));
    const desc: Descriptor = { mediaType: MediaType.OciManifest, digest: put.digest, size: put.size };
    // The name keeps the platforms pulled before (a pull for arm64 after one for amd64 gives an index of both), so
    // builds for either platform find their base image; a name of the same platform is replaced.
    await setPlatformImage(engine.content, engine.images, ref.name, desc, configPlatform(config));
    await recordLayerSource(engine.root, cfg.digest, {
      registry: ref.registry,
      repository: ref.repository,
      digest: cfg.digest,
      size: cfg.size,
      mediaType: manifest.config.mediaType,
    });
    for (const [i, l] of manifest.layers.entries()) {
      await recordLayerSource(engine.root, diffIds[i] as Digest, {
        registry: ref.registry,
        repository: ref.repository,
        digest: l.digest,
        size: l.size,
        mediaType: l.mediaType,
      });
    }
    progress.emit({ kind: "info", message: `pulled ${ref.familiar}: ${remoteDigest} (${jobs.size} of ${manifest.layers.length} layers downloaded)` });
    return { name: ref.name, manifest: desc, config: cfg.digest, remoteDigest, downloaded: jobs.size };
  } finally {
    signal?.removeEventListener("abort", onOuter);
    for (const w of pending) if (!committed.has(w)) await w.abort().catch(() => undefined);
    session.close();
  }
}
