// Writes a built image (config + manifest) into the content store and reads images back for the commands.
import type { ContentStore, ImageStore, ImageRecord } from "../store/types.js";
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest, type Platform } from "../image/types.js";
import { StoreError } from "../errors.js";
import { normalizeName } from "../image/reference.js";
import { imageConfigJson } from "../image/json.js";
import { configPlatform, formatPlatform, hostPlatform, indexPlatforms, isAttestation, pickManifest, platformMatches } from "../image/platform.js";
import { isIndexDescriptor } from "../store/image-index.js";
import type { LayerRef } from "./stage-state.js";

export interface StoredImage {
  manifest: Descriptor;
  config: Digest;
}

/** Local manifests reference uncompressed layers (digest = diff_id); exporters compress on the way out. */
export async function writeImage(store: ContentStore, config: ImageConfig, layers: LayerRef[]): Promise<StoredImage> {
  const cfg = await store.putBytes(imageConfigJson(config));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    layers: layers.map((l) => ({ mediaType: MediaType.OciLayer, digest: l.diffId, size: l.size })),
  };
  const m = await store.putBytes(JSON.stringify(manifest));
  return { manifest: { mediaType: MediaType.OciManifest, digest: m.digest, size: m.size }, config: cfg.digest };
}

/**
 * The stored image with `annotations` on its manifest (buildx's --annotation manifest:…): a new manifest, so a new
 * digest, over the same config and layers (the image id stays). The same annotations always give the same digest.
 */
export async function annotateManifest(store: ContentStore, image: StoredImage, annotations: Record<string, string>): Promise<StoredImage> {
  const manifest = await store.readJson<Manifest>(image.manifest.digest);
  const annotated: Manifest = { ...manifest, annotations: { ...(manifest.annotations ?? {}), ...annotations } };
  const m = await store.putBytes(JSON.stringify(annotated));
  return { manifest: { mediaType: image.manifest.mediaType, digest: m.digest, size: m.size }, config: image.config };
}

export interface ResolvedImage {
  record: ImageRecord;
  /** The image manifest chosen (for a multi-platform name: the requested platform's entry of its index). */
  descriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
  /** For a name pointing at an index: the platforms it holds (index order). */
  platforms?: Platform[];
}

export interface FindImageOptions {
  /** The platform to pick from a multi-platform name (default: the host's). */
  platform?: Platform;
  /** Also refuse a single-platform image of another platform (a build for that platform must not use it). */
  strict?: boolean;
  /** Any platform will do (tag, rmi): a multi-platform name without the wanted one gives its first platform. */
  anyPlatform?: boolean;
}

/**
 * The manifest a stored descriptor stands for on `platform`: itself, or the matching entry of an index (one picker
 * for the whole code base: image/platform.ts). No match is StoreError NO_MATCHING_PLATFORM.
 */
export async function resolveStoredManifest(
  store: ContentStore,
  target: Descriptor,
  what: string,
  opts: FindImageOptions = {},
): Promise<{ descriptor: Descriptor; manifest: Manifest; config: ImageConfig; platforms?: Platform[] }> {
  const want = opts.platform ?? hostPlatform();
  if (isIndexDescriptor(target)) {
    const index = await store.readJson<Index>(target.digest);
    let pick: Descriptor;
    try {
      pick = pickManifest(index.manifests, want, { what, errorClass: StoreError });
    } catch (e) {
      const first = index.manifests.find((m) => m.platform && !isAttestation(m));
      if (!opts.anyPlatform || !first) throw e;
      pick = first;
    }
    const manifest = await store.readJson<Manifest>(pick.digest);
    const config = await store.readJson<ImageConfig>(manifest.config.digest);
    return { descriptor: pick, manifest, config, platforms: indexPlatforms(index.manifests) };
  }
  const manifest = await store.readJson<Manifest>(target.digest);
  const config = await store.readJson<ImageConfig>(manifest.config.digest);
  if (opts.strict && !platformMatches(want, configPlatform(config)))
    throw new StoreError("NO_MATCHING_PLATFORM", `${what} has no image for ${formatPlatform(want)} (it has: ${formatPlatform(configPlatform(config))})`, {
      hint: `pull it (tsbuild pull --platform ${formatPlatform(want)} ${what}) or load an archive that has it`,
    });
  return { descriptor: target, manifest, config };
}

/** Look an image up by name (normalised) or by config-digest id prefix, like `docker inspect`. */
export async function findImage(store: ContentStore, images: ImageStore, ref: string, opts: FindImageOptions = {}): Promise<ResolvedImage | undefined> {
  let record: ImageRecord | undefined;
  // Like docker: a hex string may be an id prefix or a name ("abc123" is a valid name); names win.
  const idLike = /^(sha256:)?[a-f0-9]{6,64}$/.test(ref);
  if (!ref.startsWith("sha256:")) {
    try {
      record = await images.get(normalizeName(ref));
    } catch (e) {
      if (!idLike) throw e; // an id-like string that is no valid name is looked up as an id below
    }
  }
  if (!record && idLike) {
    const want = ref.replace(/^sha256:/, "");
    for (const r of await images.list()) {
      // A multi-platform name matches by its index's digest or by the id of any of its platforms' images.
      if (isIndexDescriptor(r.target)) {
        if (r.target.digest.slice("sha256:".length).startsWith(want)) {
          record = r;
          break;
        }
        const index = await store.readJson<Index>(r.target.digest);
        for (const d of index.manifests) {
          const m = await store.readJson<Manifest>(d.digest).catch(() => undefined);
          if (m?.config?.digest.slice("sha256:".length).startsWith(want)) {
            const config = await store.readJson<ImageConfig>(m.config.digest);
            return { record: r, descriptor: d, manifest: m, config, platforms: indexPlatforms(index.manifests) };
          }
        }
        continue;
      }
      const m = await store.readJson<Manifest>(r.target.digest);
      if (m.config.digest.slice("sha256:".length).startsWith(want)) {
        record = r;
        break;
      }
    }
  }
  if (!record) return undefined;
  return { record, ...(await resolveStoredManifest(store, record.target, ref, opts)) };
}

export async function requireImage(store: ContentStore, images: ImageStore, ref: string, opts: FindImageOptions = {}): Promise<ResolvedImage> {
  const found = await findImage(store, images, ref, opts);
  if (!found)
    throw new StoreError("IMAGE_NOT_FOUND", `no such image: ${ref}`, {
      hint: "run `tsbuild images` to list local images, or `tsbuild load -i FILE` to import one",
    });
  return found;
}
