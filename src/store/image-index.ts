// Multi-platform names in the store: a name may point at an OCI image index whose entries are the platforms'
// manifests (platform fields set). Writing an index, reading one back, and adding one platform to a name (pull of a
// second platform, a per-platform load) live here, so every command builds indexes the same way.
import { isIndexMediaType } from "../image/media-types.js";
import { jsonBytes } from "../image/json.js";
import { configPlatform, normalizePlatform, samePlatform } from "../image/platform.js";
import { MediaType, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from "../image/types.js";
import type { ContentStore, ImageStore } from "./types.js";
import { withFileLock } from "./file-lock.js";
import { storeLayout } from "./layout.js";

/** Store an OCI index over `manifests` (each with its platform) and return its descriptor. */
export async function writeImageIndex(content: ContentStore, manifests: Descriptor[], annotations?: Record<string, string>): Promise<Descriptor> {
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: manifests.map((m) => ({
      mediaType: m.mediaType,
      digest: m.digest,
      size: m.size,
      ...(m.annotations ? { annotations: m.annotations } : {}),
      ...(m.platform ? { platform: normalizePlatform(m.platform) } : {}),
    })),
    ...(annotations ? { annotations } : {}),
  };
  const put = await content.putBytes(jsonBytes(index));
  return { mediaType: MediaType.OciIndex, digest: put.digest, size: put.size };
}

/** True when `d` names an index (by media type). */
export function isIndexDescriptor(d: Descriptor): boolean {
  return isIndexMediaType(d.mediaType);
}

/** The platform of one stored image manifest: its descriptor's, else its config's. */
export async function manifestPlatform(content: ContentStore, d: Descriptor): Promise<Platform> {
  if (d.platform) return normalizePlatform(d.platform);
  const m = await content.readJson<Manifest>(d.digest);
  return normalizePlatform(configPlatform(await content.readJson<ImageConfig>(m.config.digest)));
}

/**
 * The per-platform manifests behind a stored descriptor: an index's entries (platform fields filled in), or the one
 * manifest with its config's platform.
 */
export async function platformManifests(content: ContentStore, d: Descriptor): Promise<Descriptor[]> {
  if (!isIndexDescriptor(d)) return [{ mediaType: d.mediaType, digest: d.digest, size: d.size, platform: await manifestPlatform(content, d) }];
  const index = await content.readJson<Index>(d.digest);
  const out: Descriptor[] = [];
  for (const m of index.manifests) {
    if (isIndexMediaType(m.mediaType)) continue;
    out.push({ ...m, platform: await manifestPlatform(content, m) });
  }
  return out;
}

/**
 * Point `name` at `manifest` for `platform` while keeping the name's other platforms: a name holding another
 * platform's image (or an index) becomes an index with this platform's entry replaced or added. Returns what the
 * name now points at.
 */
export async function setPlatformImage(content: ContentStore, images: ImageStore, name: string, manifest: Descriptor, platform: Platform): Promise<Descriptor> {
  // A read-modify-write of the name: two platforms pulled at once (one multi-platform build) must both stay.
  return withFileLock(storeLayout(content.root).ref(name), () => addPlatform(content, images, name, manifest, platform), { what: `image name ${name}` });
}

async function addPlatform(content: ContentStore, images: ImageStore, name: string, manifest: Descriptor, platform: Platform): Promise<Descriptor> {
  const p = normalizePlatform(platform);
  const existing = await images.get(name);
  let others: Descriptor[] = [];
  if (existing && (await content.has(existing.target.digest))) {
    try {
      others = (await platformManifests(content, existing.target)).filter((m) => !samePlatform(m.platform as Platform, p));
    } catch {
      // A name whose old image cannot be read any more is simply replaced.
      others = [];
    }
  }
  const target = others.length === 0 ? manifest : await writeImageIndex(content, [...others, { ...manifest, platform: p }]);
  await images.set(name, target);
  return target;
}
