// `docker save` format, Docker 25+ layout: an OCI layout (oci-layout, index.json, blobs/sha256/*) plus manifest.json
// and the legacy `repositories` file, with uncompressed layer tars, so `docker load` and skopeo both read it.
import type { Writable } from "node:stream";
import { ArchiveError, throwIfAborted } from "../errors.js";
import { jsonBytes } from "../image/json.js";
import { isUncompressedLayer } from "../image/media-types.js";
import { configPlatform } from "../image/platform.js";
import { parseReference } from "../image/reference.js";
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest } from "../image/types.js";
import type { ContentStore } from "../store/types.js";
import { openTarWriter } from "./layout-writer.js";
import { blobPath, nameAnnotations, writeBlobs, type LayoutBlob } from "./oci-layout.js";

export interface DockerArchiveOptions {
  signal?: AbortSignal;
  /** How error messages name `destFile` (e.g. "save -o"); default "output file". */
  what?: string;
}

/** One entry of manifest.json. */
export interface DockerArchiveEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

export async function exportDockerArchive(
  store: ContentStore,
  images: { names: string[]; manifest: Descriptor }[],
  destFile: string | Writable,
  opts: DockerArchiveOptions = {},
): Promise<{ descriptor: Descriptor }> {
  const first = images[0];
  if (!first) throw new ArchiveError("NOTHING_TO_EXPORT", "no images to export");
  const blobs = new Map<Digest, LayoutBlob>();
  const entries: DockerArchiveEntry[] = [];
  const indexEntries: Descriptor[] = [];
  const repositories: Record<string, Record<string, string>> = {};

  for (const img of images) {
    throwIfAborted(opts.signal);
    if (!(await store.has(img.manifest.digest))) throw new ArchiveError("BLOB_MISSING", `manifest ${img.manifest.digest} is not in the store`);
    const manifest = await store.readJson<Manifest>(img.manifest.digest);
    if (!Array.isArray(manifest.layers) || !manifest.config) {
      throw new ArchiveError(
        "UNSUPPORTED_MEDIA_TYPE",
        `${img.manifest.digest} is not an image manifest (${img.manifest.mediaType}); docker-archive holds single-platform images`,
      );
    }
    const config = await store.readJson<ImageConfig>(manifest.config.digest);
    const diffIds = config.rootfs?.diff_ids ?? [];
    // The archive's layers are the uncompressed tars (blob = diff_id); local manifests already reference exactly those.
    manifest.layers.forEach((l, i) => {
      if (!isUncompressedLayer(l.mediaType) || l.digest !== diffIds[i]) {
        throw new ArchiveError(
          "UNSUPPORTED_LAYER",
          `layer ${i + 1} of ${img.manifest.digest} is stored as ${l.mediaType} ${l.digest}, not as its uncompressed tar (diff_id ${diffIds[i] ?? "missing"})`,
          { hint: "docker-archive export needs images built or loaded locally" },
        );
      }
    });
    if (manifest.layers.length !== diffIds.length) {
      throw new ArchiveError(
        "DIFF_ID_COUNT",
        `image ${img.manifest.digest} has ${manifest.layers.length} layers but its config lists ${diffIds.length} diff_ids`,
      );
    }
    blobs.set(manifest.config.digest, { digest: manifest.config.digest, size: manifest.config.size });
    for (const l of manifest.layers) blobs.set(l.digest, { digest: l.digest, size: l.size });
    blobs.set(img.manifest.digest, { digest: img.manifest.digest, size: img.manifest.size });

    const tags: string[] = [];
    const platform = configPlatform(config);
    const base: Descriptor = { mediaType: img.manifest.mediaType, digest: img.manifest.digest, size: img.manifest.size, platform };
    if (img.names.length === 0) indexEntries.push(base);
    for (const n of img.names) {
      const ref = parseReference(n);
      // RepoTags can only carry name:tag; digest-only names still go into index.json.
      if (ref.tag !== undefined && ref.digest === undefined) {
        tags.push(ref.familiar);
        const repo = ref.familiar.slice(0, ref.familiar.length - ref.tag.length - 1);
        const top = diffIds[diffIds.length - 1];
        if (top) (repositories[repo] ??= {})[ref.tag] = top.slice("sha256:".length);
      }
      indexEntries.push({ ...base, annotations: nameAnnotations(ref.name) ?? {} });
    }
    entries.push({ Config: blobPath(manifest.config.digest), RepoTags: tags, Layers: manifest.layers.map((l) => blobPath(l.digest)) });
  }

  const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: indexEntries };
  const w = await openTarWriter(destFile, opts.signal, opts.what);
  try {
    await w.addBytes("oci-layout", jsonBytes({ imageLayoutVersion: "1.0.0" }));
    await writeBlobs(w, store, blobs);
    await w.addBytes("index.json", jsonBytes(index));
    await w.addBytes("manifest.json", jsonBytes(entries));
    if (Object.keys(repositories).length > 0) await w.addBytes("repositories", jsonBytes(repositories));
    await w.finish();
  } catch (e) {
    await w.abort();
    throw e;
  }
  return { descriptor: { mediaType: first.manifest.mediaType, digest: first.manifest.digest, size: first.manifest.size } };
}
