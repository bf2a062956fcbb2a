// Which media types are manifests, indexes and layers, and how a layer media type is compressed: the one answer
// pull, push, load, the exporters and `du` share (before, six modules kept their own sets).
import { MediaType } from "./types.js";

/** Docker schema 1 manifests (deprecated 2017): recognised only to refuse them clearly. */
export const SCHEMA1_MEDIA_TYPES: ReadonlySet<string> = new Set([
  "application/vnd.docker.distribution.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
]);

export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set<string>([MediaType.OciIndex, MediaType.DockerManifestList]);
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set<string>([MediaType.OciManifest, MediaType.DockerManifest]);

export type LayerCompression = "none" | "gzip" | "zstd";

/** Every layer type tsbuild unpacks, with its compression (non-distributable/foreign layers included). */
const LAYERS: ReadonlyMap<string, LayerCompression> = new Map<string, LayerCompression>([
  [MediaType.OciLayer, "none"],
  [MediaType.OciLayerGzip, "gzip"],
  [MediaType.OciLayerZstd, "zstd"],
  [MediaType.DockerLayer, "none"],
  [MediaType.DockerLayerGzip, "gzip"],
  ["application/vnd.oci.image.layer.nondistributable.v1.tar", "none"],
  ["application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "gzip"],
  ["application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", "zstd"],
  ["application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "gzip"],
]);

export const LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set(LAYERS.keys());

export function isIndexMediaType(mediaType: string | undefined): mediaType is string {
  return mediaType !== undefined && INDEX_MEDIA_TYPES.has(mediaType);
}

export function isManifestMediaType(mediaType: string | undefined): mediaType is string {
  return mediaType !== undefined && MANIFEST_MEDIA_TYPES.has(mediaType);
}

export function isLayerMediaType(mediaType: string | undefined): mediaType is string {
  return mediaType !== undefined && LAYERS.has(mediaType);
}

/** The compression of a layer media type; undefined for anything that is not a layer type tsbuild knows. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  return LAYERS.get(mediaType);
}

/** A plain tar layer (the store keeps layers uncompressed, so blob digest = diff_id). */
export function isUncompressedLayer(mediaType: string): boolean {
  return LAYERS.get(mediaType) === "none";
}
