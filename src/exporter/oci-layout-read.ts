// An OCI image layout directory read as an image (--build-context NAME=oci-layout://PATH[:TAG][@DIGEST]), by buildx's
// and BuildKit's rules: the blob DIGEST names, else the index.json entry whose io.containerd.image.name, then
// org.opencontainers.image.ref.name, is TAG, else the only entry; an index picks the platform (pickManifest). Every
// document and layer is checked against its digest, and layers land decompressed in the content store (blob =
// diff_id) as `load` stores them, so FROM and COPY --from use the image like a pulled one.
import { constants, createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { BuildError, TsbuildError } from "../errors.js";
import { imageConfigProblem } from "../image/config-check.js";
import { sha256Digest } from "../image/json.js";
import { isIndexMediaType } from "../image/media-types.js";
import type { OciLayoutRef } from "../image/oci-layout-ref.js";
import { pickManifest } from "../image/platform.js";
import { isDigest, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest, type Platform } from "../image/types.js";
import { decompressionBudget } from "../layer/compression.js";
import type { ContentStore } from "../store/types.js";
import { errnoCode } from "../util/errno.js";
import { ingestBlob, storedLayerProblem } from "./load.js";
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME } from "./oci-layout.js";

export interface LayoutImage {
  /** The manifest chosen (for an index: its entry for the platform). */
  manifest: Digest;
  /** The config digest: the image id. */
  id: Digest;
  config: ImageConfig;
  layers: { diffId: Digest; size: number }[];
}

/** Manifests, indexes and configs are small; anything bigger is not one. */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;
const MAX_INDEX_DEPTH = 4;

export async function readOciLayoutImage(
  store: ContentStore,
  ref: OciLayoutRef,
  platform: Platform,
  opts: { signal?: AbortSignal } = {},
): Promise<LayoutImage> {
  const dir = ref.path;
  const label = `OCI layout ${dir}`;
  const fail = (code: ConstructorParameters<typeof BuildError>[0], what: string, hint?: string) =>
    new BuildError(code, `${label}: ${what}`, hint ? { hint } : {});
  const st = await stat(dir).catch((e: unknown) => {
    throw errnoCode(e) === "ENOENT"
      ? fail("PATH_NOT_FOUND", "does not exist", "write a layout with `tsbuild build -o type=oci,tar=false,dest=DIR` or `skopeo copy … oci:DIR`")
      : fail("CANNOT_READ", `cannot be read: ${(e as Error).message}`);
  });
  if (!st.isDirectory()) throw fail("NOT_A_DIRECTORY", "is not a directory", "oci-layout:// names an OCI image layout directory (unpack a layout tar first)");

  const layoutFile = await readDocument(join(dir, "oci-layout"), "oci-layout file", true);
  const version = (parseJson(layoutFile, "its oci-layout file") as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
  if (typeof version !== "string" || !version.startsWith("1."))
    throw fail("BAD_LAYOUT", `its oci-layout file has an unsupported imageLayoutVersion ${JSON.stringify(version)}`);
  const index = parseJson(await readDocument(join(dir, "index.json"), "index.json", true), "index.json") as Index | null;
  if (!index || !Array.isArray(index.manifests)) throw fail("BAD_INDEX", "its index.json has no manifests list");

  const top = chooseEntry(index.manifests);
  const { digest: manifestDigest, manifest } = await resolveManifest(top, 0);
  const configBytes = await blob(manifest.config, "the image config");
  const config = parseJson(configBytes, "the image config") as ImageConfig;
  const problem = config && typeof config === "object" && Array.isArray(config.rootfs?.diff_ids) ? imageConfigProblem(config) : "no rootfs.diff_ids";
  if (problem) throw fail("BAD_CONFIG", `the image config ${manifest.config.digest} is malformed: ${problem}`);
  const diffIds = config.rootfs.diff_ids;
  if (!Array.isArray(manifest.layers) || diffIds.length !== manifest.layers.length)
    throw fail("DIFF_ID_COUNT", `the manifest lists ${manifest.layers?.length ?? 0} layers, its config ${diffIds.length} diff_ids`);
  const layers: LayoutImage["layers"] = [];
  let budget: Awaited<ReturnType<typeof decompressionBudget>> | undefined;
  for (const [i, l] of manifest.layers.entries()) {
    const diffId = diffIds[i] as Digest;
    // Stored before (an earlier build, `load`, a pull): the store's copy was verified when it was written.
    const have = await store.size(diffId);
    if (have !== undefined) {
      layers.push({ diffId, size: have });
      continue;
    }
    const file = blobFile(l, `layer ${i + 1}`);
    await requireBlob(file, l.digest, `layer ${i + 1}`);
    budget ??= await decompressionBudget(store.root);
    const { raw, blob: stored } = await ingestBlob(store, createReadStream(file), `blobs/sha256/${l.digest.slice(7)}`, dir, budget, opts.signal);
    try {
      if (raw.digest !== l.digest) throw fail("DIGEST_MISMATCH", `layer ${i + 1} has digest ${raw.digest}, but the manifest says ${l.digest}`);
      const problem = storedLayerProblem(stored, diffId);
      if (problem) throw fail(problem.code, `layer ${i + 1} (${l.digest}) ${problem.what}`, problem.hint);
      await stored.writer.commit();
    } catch (e) {
      await stored.writer.abort().catch(() => undefined);
      throw e;
    }
    layers.push({ diffId, size: stored.size });
  }
  await store.putBytes(configBytes, manifest.config.digest);
  return { manifest: manifestDigest, id: manifest.config.digest, config, layers };

  function chooseEntry(entries: Descriptor[]): Descriptor {
    if (ref.digest !== undefined) {
      if (!isDigest(ref.digest)) throw fail("INVALID_DIGEST", `${ref.digest} is not a sha256 digest (64 lower-case hex digits)`);
      // Pinned: the blob need not be listed in index.json (BuildKit looks it up in the layout's content store).
      return entries.find((e) => e.digest === ref.digest) ?? { mediaType: "", digest: ref.digest, size: -1 };
    }
    const named = (key: string) => entries.find((e) => e.annotations?.[key] === ref.tag);
    const found = named(ANNOTATION_IMAGE_NAME) ?? named(ANNOTATION_REF_NAME) ?? (entries.length === 1 ? entries[0] : undefined);
    if (found) return found;
    const tags = entries.map((e) => e.annotations?.[ANNOTATION_REF_NAME]).filter((t): t is string => t !== undefined);
    throw fail(
      "NO_MANIFEST",
      entries.length === 0 ? "its index.json lists no image" : `its index.json has no image tagged ${JSON.stringify(ref.tag)}, and more than one image`,
      tags.length ? `name one: oci-layout://${dir}:${tags[0]} (tags: ${tags.join(", ")}), or pin it with @sha256:…` : "pin one with oci-layout://PATH@sha256:…",
    );
  }

  /** The image manifest `d` stands for on the platform: itself, or its entry of an index (nested at most a few deep). */
  async function resolveManifest(d: Descriptor, depth: number): Promise<{ digest: Digest; manifest: Manifest }> {
    if (depth > MAX_INDEX_DEPTH) throw fail("BAD_INDEX", "indexes nested too deeply");
    const doc = parseJson(await blob(d, `${depth === 0 ? "the image" : "the manifest"} ${d.digest}`), `document ${d.digest}`) as (Manifest & Index) | null;
    if (!doc || typeof doc !== "object") throw fail("BAD_MANIFEST", `${d.digest} is not an image manifest or index`);
    if (isIndexMediaType(d.mediaType) || isIndexMediaType(doc.mediaType) || (Array.isArray(doc.manifests) && !Array.isArray(doc.layers))) {
      const pick = pickManifest(doc.manifests ?? [], platform, { what: `${label} (index ${d.digest})`, errorClass: BuildError });
      return resolveManifest(pick, depth + 1);
    }
    if (!doc.config || typeof doc.config.digest !== "string" || !Array.isArray(doc.layers)) throw fail("BAD_MANIFEST", `${d.digest} is not an image manifest`);
    return { digest: d.digest, manifest: doc };
  }

  function blobFile(d: Descriptor, what: string): string {
    if (typeof d?.digest !== "string" || !isDigest(d.digest)) throw fail("BAD_DESCRIPTOR", `${what} has no valid sha256 digest`);
    return join(dir, "blobs", "sha256", d.digest.slice("sha256:".length));
  }

  async function requireBlob(file: string, digest: Digest, what: string): Promise<void> {
    const s = await stat(file).catch(() => undefined);
    if (!s?.isFile()) throw fail("MISSING_BLOB", `${what} (${digest}) is not in its blobs`, "the layout is incomplete; write it again");
  }

  /** A small blob, checked against its digest. */
  async function blob(d: Descriptor, what: string): Promise<Buffer> {
    const file = blobFile(d, what);
    const bytes = await readDocument(file, what, false);
    if (bytes === undefined)
      throw fail(
        "MISSING_BLOB",
        `${what} is not in its blobs`,
        ref.digest === d.digest ? "check the digest after @" : "the layout is incomplete; write it again",
      );
    const got = sha256Digest(bytes);
    if (got !== d.digest)
      throw fail("DIGEST_MISMATCH", `${what}: blobs/sha256/${d.digest.slice(7)} has digest ${got}`, "the layout is corrupt or was modified");
    return bytes;
  }

  async function readDocument(file: string, what: string, required: true): Promise<Buffer>;
  async function readDocument(file: string, what: string, required: false): Promise<Buffer | undefined>;
  async function readDocument(file: string, what: string, required: boolean): Promise<Buffer | undefined> {
    let fh;
    try {
      // O_NONBLOCK: a FIFO planted in the layout must not block the open (fstat then refuses it).
      fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") {
        if (!required) return undefined;
        throw fail("BAD_LAYOUT", `is not an OCI image layout: it has no ${what}`, "write one with `tsbuild build -o type=oci,tar=false,dest=DIR`");
      }
      throw fail("CANNOT_READ", `cannot read its ${what}: ${(e as Error).message}`);
    }
    try {
      const s = await fh.stat();
      if (!s.isFile()) throw fail("BAD_LAYOUT", `its ${what} is not a regular file`);
      if (s.size > MAX_DOCUMENT_BYTES) throw fail("BAD_LAYOUT", `its ${what} is ${s.size} bytes, too big for a JSON document`);
      return await fh.readFile();
    } catch (e) {
      if (e instanceof TsbuildError) throw e;
      throw fail("CANNOT_READ", `cannot read its ${what}: ${(e as Error).message}`);
    } finally {
      await fh.close();
    }
  }

  function parseJson(bytes: Buffer, what: string): unknown {
    try {
      return JSON.parse(bytes.toString("utf8"));
    } catch (e) {
      throw fail("BAD_JSON", `${what} is not valid JSON: ${(e as Error).message}`);
    }
  }
}
