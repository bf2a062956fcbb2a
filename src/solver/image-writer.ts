// Writes a built image (config + manifest) into the content store and reads images back for the commands.
import type { ContentStore, ImageStore, ImageRecord } from "../store/types.js";
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Manifest } from "../image/types.js";
import { StoreError } from "../errors.js";
import { normalizeName } from "../image/reference.js";
import { imageConfigJson } from "../image/json.js";
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
  manifest: Manifest;
  config: ImageConfig;
}

/** Look an image up by name (normalised) or by config-digest id prefix, like `docker inspect`. */
export async function findImage(store: ContentStore, images: ImageStore, ref: string): Promise<ResolvedImage | undefined> {
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
      const m = await store.readJson<Manifest>(r.target.digest);
      if (m.config.digest.slice("sha256:".length).startsWith(want)) {
        record = r;
        break;
      }
    }
  }
  if (!record) return undefined;
  const manifest = await store.readJson<Manifest>(record.target.digest);
  const config = await store.readJson<ImageConfig>(manifest.config.digest);
  return { record, manifest, config };
}

export async function requireImage(store: ContentStore, images: ImageStore, ref: string): Promise<ResolvedImage> {
  const found = await findImage(store, images, ref);
  if (!found)
    throw new StoreError("IMAGE_NOT_FOUND", `no such image: ${ref}`, {
      hint: "run `tsbuild images` to list local images, or `tsbuild load -i FILE` to import one",
    });
  return found;
}
