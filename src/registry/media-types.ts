// Which registry documents tsbuild understands: image manifests and indexes in OCI and Docker schema-2 form, the
// layer types it can unpack, and the OCI ↔ Docker spelling of each (push writes one family consistently).
import { RegistryError } from "../errors.js";
import { isIndexMediaType, isManifestMediaType, SCHEMA1_MEDIA_TYPES } from "../image/media-types.js";
import { MediaType, type Index, type Manifest } from "../image/types.js";

export type ImageFormat = "oci" | "docker";

export type ParsedDocument = { kind: "index"; mediaType: string; index: Index } | { kind: "manifest"; mediaType: string; manifest: Manifest };

/**
 * Classify a fetched manifest by its Content-Type, falling back to the document's own mediaType (some registries
 * send application/json). Schema 1 and unknown types are rejected with a clear error.
 */
export function parseManifestDocument(bytes: Buffer, contentType: string, what: string): ParsedDocument {
  let doc: { schemaVersion?: unknown; mediaType?: unknown; manifests?: unknown; layers?: unknown; config?: unknown };
  try {
    doc = JSON.parse(bytes.toString("utf8")) as typeof doc;
  } catch {
    throw new RegistryError("BAD_MANIFEST", `the manifest of ${what} is not valid JSON`);
  }
  if (typeof doc !== "object" || doc === null) throw new RegistryError("BAD_MANIFEST", `the manifest of ${what} is not a JSON object`);
  const declared = typeof doc.mediaType === "string" ? doc.mediaType : undefined;
  if (SCHEMA1_MEDIA_TYPES.has(contentType) || doc.schemaVersion === 1) {
    throw new RegistryError("UNSUPPORTED_MANIFEST", `${what} is a Docker schema 1 image, a format deprecated since 2017 that tsbuild does not read`, {
      hint: "push the image again with a current Docker or skopeo (they write schema 2 / OCI manifests)",
    });
  }
  let type = isIndexMediaType(contentType) || isManifestMediaType(contentType) ? contentType : declared;
  if (type === undefined) {
    // OCI allows omitting mediaType; tell an index from a manifest by shape.
    if (Array.isArray(doc.manifests)) type = MediaType.OciIndex;
    else if (Array.isArray(doc.layers) && doc.config) type = MediaType.OciManifest;
  }
  if (isIndexMediaType(type)) {
    if (!Array.isArray(doc.manifests)) throw new RegistryError("BAD_MANIFEST", `the index of ${what} has no manifests list`);
    return { kind: "index", mediaType: type, index: doc as unknown as Index };
  }
  if (isManifestMediaType(type)) {
    const m = doc as unknown as Manifest;
    if (!m.config || typeof m.config.digest !== "string" || !Array.isArray(m.layers))
      throw new RegistryError("BAD_MANIFEST", `the manifest of ${what} has no config or layers`);
    return { kind: "manifest", mediaType: type, manifest: m };
  }
  throw new RegistryError(
    "UNSUPPORTED_MANIFEST",
    `${what} has the media type ${JSON.stringify(type ?? contentType)}, which is not an image manifest or index`,
    {
      hint: "tsbuild pulls OCI and Docker schema 2 images",
    },
  );
}

const TO_DOCKER: Record<string, string> = {
  [MediaType.OciLayerGzip]: MediaType.DockerLayerGzip,
  [MediaType.OciLayer]: MediaType.DockerLayer,
  [MediaType.OciConfig]: MediaType.DockerConfig,
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
};
const TO_OCI: Record<string, string> = Object.fromEntries(Object.entries(TO_DOCKER).map(([k, v]) => [v, k]));

/** The media type of a layer or config in the chosen family (zstd has no Docker spelling: refused for docker). */
export function mediaTypeFor(format: ImageFormat, mediaType: string): string {
  if (format === "oci") return TO_OCI[mediaType] ?? mediaType;
  const d = TO_DOCKER[mediaType] ?? mediaType;
  if (d.startsWith("application/vnd.oci."))
    throw new RegistryError("UNSUPPORTED_MEDIA_TYPE", `${mediaType} cannot be written in a Docker schema 2 manifest`, { hint: "push with --format oci" });
  return d;
}

export function manifestMediaType(format: ImageFormat): string {
  return format === "oci" ? MediaType.OciManifest : MediaType.DockerManifest;
}
