// Import a docker-archive (`docker save`, any era) or an OCI layout tar, possibly compressed, into the local store.
// The archive is read once, streaming: blob members go to pending store writes (decompressed, so blob = diff_id)
// while being checked as layer tars; small JSON members stay in memory. Nothing is committed until every image
// verifies, and image names are written last.
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { posix } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { AbortError, ArchiveError, StoreError, TsbuildError, UsageError, throwIfAborted, type ErrorCode } from "../errors.js";
import { imageConfigProblem } from "../image/config-check.js";
import { jsonBytes, sha256Digest } from "../image/json.js";
import { isIndexMediaType } from "../image/media-types.js";
import { configPlatform, hostPlatform, isAttestation, normalizePlatform, pickManifest } from "../image/platform.js";
import { writeImageIndex } from "../store/image-index.js";
import { normalizeName } from "../image/reference.js";
import { isDigest, MediaType, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest, type Platform } from "../image/types.js";
import { budgetedStream, decompressionBudget, decompressStream, peek, type ByteBudget, type CompressionKind } from "../layer/compression.js";
import type { BlobWriter, ContentStore, ImageStore } from "../store/types.js";
import { withBuildLock } from "../store/locks.js";
import { tarTail } from "../layer/tar-tail.js";
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME } from "./oci-layout.js";
import { sha256Tap } from "../util/sha256-tap.js";

export interface LoadOptions {
  /** Name the loaded image (for archives without names); needs an archive holding one image. */
  tag?: string;
  signal?: AbortSignal;
  /** Most decompressed bytes all blobs together may write (default: the store's free space minus a reserve). */
  maxUncompressedBytes?: number;
  /** Load only this platform's image of a multi-platform archive (default: every platform, kept as an index); no
   *  match is NO_MATCHING_PLATFORM. */
  platform?: Platform;
}

export interface LoadedImage {
  /** Normalised name; absent for an image loaded without any name. */
  name?: string;
  /** The image manifest, or for a multi-platform image the index over its platforms' manifests. */
  manifest: Descriptor;
  /** The image id (for a multi-platform image: the first platform's). */
  config: Digest;
  /** A multi-platform image's platforms, in index order. */
  platforms?: Platform[];
}

/** Members that look like JSON and are at most this big are kept in memory (manifests, configs, indexes). */
const MAX_JSON_MEMBER = 16 * 1024 * 1024;
const MAX_JSON_TOTAL = 256 * 1024 * 1024;
const MAX_ALIAS_DEPTH = 16;

export interface LayerCheck {
  /** Why the blob is not a readable tar (undefined: it is one). */
  notTar?: string;
  /** First unsafe entry: its name and why. */
  unsafe?: { entry: string; why: string };
}

export interface StoredBlob {
  writer: BlobWriter;
  /** Digest and size of the decompressed bytes (what the store will hold). */
  digest: Digest;
  size: number;
  compression: CompressionKind;
  check: LayerCheck;
}

/**
 * What is wrong with a layer stored from an image (a tar? only safe names? the diff_id its config gives?), or
 * undefined: the one rule `load` and `oci-layout://` contexts share, each raising it in its own error class.
 */
export function storedLayerProblem(
  blob: StoredBlob,
  diffId: Digest,
): { code: "LAYER_NOT_TAR" | "UNSAFE_PATH" | "DIGEST_MISMATCH"; what: string; hint?: string } | undefined {
  if (blob.check.notTar !== undefined) return { code: "LAYER_NOT_TAR", what: `is not a tar archive: ${blob.check.notTar}` };
  if (blob.check.unsafe)
    return {
      code: "UNSAFE_PATH",
      what: `contains the unsafe entry ${JSON.stringify(blob.check.unsafe.entry)} (${blob.check.unsafe.why})`,
      hint: "refusing an image that could write outside its root filesystem",
    };
  if (blob.digest !== diffId)
    return { code: "DIGEST_MISMATCH", what: `has diff_id ${blob.digest}, but the image config says ${diffId}`, hint: "the image is corrupt or was modified" };
  return undefined;
}

interface Member {
  path: string;
  /** Digest and size of the member as it is in the archive (the compressed blob for compressed layers). */
  rawDigest: Digest;
  rawSize: number;
  json?: Buffer;
  blob?: StoredBlob;
}

interface PlannedImage {
  names: string[];
  config: Buffer;
  configDigest: Digest;
  layers: StoredBlob[];
  /** The image's platform (its index entry's, else its config's). */
  platform: Platform;
}

/** What one name (or one unnamed entry) gets: an image, or several platforms' images kept as one index. */
interface PlannedGroup {
  names: string[];
  images: PlannedImage[];
  multi: boolean;
}

function cleanMemberPath(p: string): string {
  const n = posix.normalize(p.replace(/^\/+/, ""));
  return n === "." ? "" : n.replace(/^\.\//, "").replace(/\/+$/, "");
}

/** True when `p` climbs above its root through "..". */
function escapesRoot(p: string): boolean {
  let depth = 0;
  for (const seg of p.split("/")) {
    if (seg === "..") {
      if (--depth < 0) return true;
    } else if (seg !== "" && seg !== ".") depth++;
  }
  return false;
}

function unsafeReason(h: tar.Header): string | undefined {
  if (h.name.startsWith("/")) return "absolute path";
  if (escapesRoot(h.name)) return "path escapes the root through '..'";
  if (h.type === "link" && h.linkname !== undefined && h.linkname !== null) {
    if (h.linkname.startsWith("/")) return `hardlink to the absolute path ${JSON.stringify(h.linkname)}`;
    if (escapesRoot(h.linkname)) return `hardlink to ${JSON.stringify(h.linkname)}, outside the root`;
  }
  return undefined;
}

/** Parses a (decompressed) blob as a tar while it streams into the store, noting whether it is one and any unsafe entry. */
class LayerScanner {
  readonly check: LayerCheck = {};
  private readonly ex = tar.extract();
  private readonly settled: Promise<void>;
  private stopped = false;

  constructor() {
    this.ex.on("entry", (h, stream, next) => {
      const why = unsafeReason(h);
      if (why && !this.check.unsafe) this.check.unsafe = { entry: h.name, why };
      stream.on("end", () => next());
      // A blob cut inside an entry's data destroys the entry stream too; the extractor's own error records why.
      stream.on("error", () => undefined);
      stream.resume();
    });
    this.settled = new Promise<void>((resolve) => {
      this.ex.on("finish", () => resolve());
      this.ex.on("close", () => resolve());
      this.ex.on("error", (e: Error) => {
        this.check.notTar ??= e.message;
        this.stopped = true;
        resolve();
      });
    });
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.stopped) return;
    if (!this.ex.write(chunk)) await Promise.race([new Promise<void>((r) => this.ex.once("drain", () => r())), this.settled]);
  }

  async end(): Promise<LayerCheck> {
    if (!this.stopped) {
      this.stopped = true;
      this.ex.end(null);
    }
    await this.settled;
    return this.check;
  }
}

/** Stream one blob member into a pending store write: decompressed, hashed both ways, scanned as a tar. */
export async function ingestBlob(
  store: ContentStore,
  src: Readable,
  member: string,
  archive: string,
  budget: ByteBudget,
  signal?: AbortSignal,
): Promise<{ raw: { digest: Digest; size: number }; blob: StoredBlob }> {
  const raw = sha256Tap();
  // An error of the source is the outer archive's (e.g. truncated): the caller reports it as such, not as a bad blob.
  let sourceError: unknown;
  src.once("error", (e) => (sourceError ??= e));
  const feeding = pipeline(src, raw, signal ? { signal } : {});
  feeding.catch(() => undefined);
  const writer = store.write();
  try {
    const { kind, stream } = await decompressStream(raw);
    const scanner = new LayerScanner();
    const plain = sha256Tap((c) => scanner.write(c));
    try {
      await pipeline(stream, budgetedStream(budget, `${archive}: member ${member}`), plain, writer.stream, signal ? { signal } : {});
    } catch (e) {
      // The source's error first: a compressed outer archive that fails mid-member reaches this pipeline as the
      // outer decompressor's DECOMPRESS_FAILED, which is the archive's fault (truncated), not this blob's.
      if (signal?.aborted) throw new AbortError();
      if (sourceError !== undefined) throw sourceError;
      if (e instanceof ArchiveError && e.code === "DECOMPRESS_FAILED")
        throw new ArchiveError("CORRUPT_BLOB", `${archive}: member ${member} cannot be read as ${kind}: ${e.message}`, { cause: e });
      if (e instanceof TsbuildError) throw e;
      throw new ArchiveError("CORRUPT_BLOB", `${archive}: member ${member} cannot be read${kind !== "none" ? ` as ${kind}` : ""}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    await feeding;
    const check = await scanner.end();
    return { raw: { digest: raw.digest(), size: raw.bytes() }, blob: { writer, digest: plain.digest(), size: plain.bytes(), compression: kind, check } };
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

function looksLikeJson(first: Buffer): boolean {
  for (const b of first) {
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    return b === 0x7b || b === 0x5b; // { [
  }
  return true; // empty or all whitespace: small, keep in memory
}

function isIndexLike(mediaType: string | undefined, doc: unknown): boolean {
  if (isIndexMediaType(mediaType)) return true;
  const o = doc as { manifests?: unknown; layers?: unknown } | null;
  return typeof o === "object" && o !== null && Array.isArray(o.manifests) && !Array.isArray(o.layers);
}

/** The hex digest encoded in a member path (`blobs/sha256/<hex>`, `<hex>.json`, `<hex>.tar`), if any. */
function digestInPath(p: string): Digest | undefined {
  const m = /(?:^|\/)(?:sha256\/)?([a-f0-9]{64})(?:\.json|\.tar)?$/.exec(p);
  return m?.[1] ? `sha256:${m[1]}` : undefined;
}

/** An archive read from a stream (`tsbuild load` from stdin); `name` is how messages call it ("standard input"). */
export interface ArchiveStream {
  stream: Readable;
  name: string;
}

/**
 * Import `file` (a path, or a stream read once) into the store. Holds the store's shared lock while blobs land
 * before the names that keep them, so a concurrent prune cannot take them in between.
 */
export function loadArchive(store: ContentStore, images: ImageStore, file: string | ArchiveStream, opts: LoadOptions = {}): Promise<LoadedImage[]> {
  return withBuildLock(store.root, opts.signal, () => loadArchiveLocked(store, images, file, opts));
}

/** loadArchive for a caller that already holds the store's shared lock. */
export async function loadArchiveLocked(
  store: ContentStore,
  images: ImageStore,
  source: string | ArchiveStream,
  opts: LoadOptions = {},
): Promise<LoadedImage[]> {
  const { signal } = opts;
  const file = typeof source === "string" ? source : source.name;
  const want = opts.platform ? normalizePlatform(opts.platform) : hostPlatform();
  // Without --platform every platform of a multi-platform image is kept (as `docker load` with the containerd store).
  const keepAll = opts.platform === undefined;
  const members = new Map<string, Member>();
  const aliases = new Map<string, string>();
  const writers = new Set<BlobWriter>();
  const committed = new Set<BlobWriter>();
  const fail = (code: ErrorCode, what: string, hint?: string) => new ArchiveError(code, `${file}: ${what}`, hint ? { hint } : {});
  let budget: Promise<ByteBudget> | undefined;
  const budgetOnce = () => (budget ??= decompressionBudget(store.root, opts.maxUncompressedBytes));
  // Members kept in memory (JSON-looking, each at most MAX_JSON_MEMBER) are bounded in total too.
  let jsonTotal = 0;

  try {
    await readArchive();
    throwIfAborted(signal);
    const plan = await assemble();
    return await commit(plan);
  } finally {
    for (const w of writers) if (!committed.has(w)) await w.abort().catch(() => undefined);
  }

  /** The archive's bytes: the stream given, or the regular file (never a FIFO or device, never 0 bytes). */
  async function openInput(): Promise<Readable> {
    if (typeof source !== "string") {
      const { head, stream } = await peek(source.stream, 1).catch((e: unknown) =>
        Promise.reject(fail("CANNOT_READ", `cannot be read: ${(e as Error).message}`)),
      );
      if (head.length === 0) throw fail("EMPTY_ARCHIVE", "is empty (0 bytes)", "pipe a docker-archive or OCI layout tar into it, or use -i FILE");
      return stream;
    }
    // O_NONBLOCK: opening a FIFO must not block (a blocked open ignores Ctrl-C); fstat then refuses it.
    let fh: FileHandle;
    try {
      fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    } catch (e) {
      throw fail("CANNOT_READ", `cannot be read: ${(e as Error).message}`);
    }
    let size: number;
    try {
      const st = await fh.stat();
      if (!st.isFile())
        throw fail("NOT_A_FILE", `is not a regular file (${st.isDirectory() ? "a directory" : st.isFIFO() ? "a named pipe" : "a special file"})`);
      size = st.size;
    } catch (e) {
      await fh.close().catch(() => undefined);
      if (e instanceof ArchiveError) throw e;
      throw fail("CANNOT_READ", `cannot be read: ${(e as Error).message}`);
    }
    if (size === 0) {
      await fh.close().catch(() => undefined);
      throw fail("EMPTY_ARCHIVE", "is empty (0 bytes)", "the file was probably not written completely; create it again");
    }
    return fh.createReadStream();
  }

  async function readArchive(): Promise<void> {
    const raw = await openInput();
    const ex = tar.extract();
    let entries = 0;
    let input: Readable;
    let kind: CompressionKind;
    // The tar stream must end with its end-of-archive marker (zero blocks); without one it was cut at a member boundary.
    const tail = tarTail();
    try {
      ({ kind, stream: input } = await decompressStream(raw));
    } catch (e) {
      if (e instanceof TsbuildError) throw e;
      throw fail("CANNOT_READ", `cannot be read: ${(e as Error).message}`);
    }
    const feeding = pipeline(input, tail, ex, signal ? { signal } : {});
    feeding.catch(() => undefined);
    const describe = (e: unknown): TsbuildError => {
      if (e instanceof ArchiveError && e.code === "DECOMPRESS_FAILED")
        return fail("TRUNCATED", `cannot be decompressed (${kind}); it is truncated or corrupt: ${e.message}`);
      if (e instanceof TsbuildError) return e;
      if (signal?.aborted) return new AbortError();
      const msg = (e as Error).message ?? String(e);
      if (/unexpected end|premature|truncated/i.test(msg)) return fail("TRUNCATED", `the archive is truncated (${msg})`);
      if (entries === 0) return fail("NOT_A_TAR", `is not a tar archive${kind !== "none" ? ` (after ${kind} decompression)` : ""}: ${msg}`);
      return fail("CORRUPT_ARCHIVE", `the tar archive is corrupt after ${entries} members: ${msg}`);
    };
    try {
      for await (const entry of ex) {
        entries++;
        throwIfAborted(signal);
        const h = entry.header;
        const path = cleanMemberPath(h.name);
        if (h.type === "file" || h.type === "contiguous-file") {
          await ingestMember(path, entry as unknown as Readable, h.size ?? 0);
        } else {
          if ((h.type === "symlink" || h.type === "link") && h.linkname) {
            // Older `docker save` links repeated layers (<id>/layer.tar -> ../<id2>/layer.tar); hardlinks name archive paths.
            const target = h.type === "symlink" ? posix.join(posix.dirname(path), h.linkname) : h.linkname;
            aliases.set(path, cleanMemberPath(target));
          }
          entry.resume();
        }
      }
      await feeding;
    } catch (e) {
      ex.destroy();
      await feeding.catch(() => undefined);
      throw describe(e);
    }
    if (!tail.ended())
      throw fail(
        "TRUNCATED",
        `the archive is truncated: it ends after ${entries} members without the tar end-of-archive marker`,
        "the file was probably not written or copied completely",
      );
  }

  async function ingestMember(path: string, entry: Readable, size: number): Promise<void> {
    const it = entry[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const first = await it.next();
    const head = first.done ? Buffer.alloc(0) : first.value;
    const old = members.get(path);
    if (old?.blob) {
      writers.delete(old.blob.writer);
      await old.blob.writer.abort();
    }
    aliases.delete(path);
    if (size <= MAX_JSON_MEMBER && looksLikeJson(head)) {
      const chunks = [head];
      for (let r = await it.next(); !r.done; r = await it.next()) chunks.push(r.value);
      const json = Buffer.concat(chunks);
      jsonTotal += json.length;
      if (jsonTotal > MAX_JSON_TOTAL)
        throw fail(
          "TOO_MANY_DOCUMENTS",
          `holds more than ${MAX_JSON_TOTAL / (1024 * 1024)} MiB of JSON documents`,
          "an image archive holds a few small JSON files; this one is corrupt or hostile",
        );
      members.set(path, { path, rawDigest: sha256Digest(json), rawSize: json.length, json });
      return;
    }
    async function* rest(): AsyncGenerator<Buffer> {
      if (!first.done) yield head;
      for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
    }
    const { raw, blob } = await ingestBlob(store, Readable.from(rest()), path, file, await budgetOnce(), signal);
    writers.add(blob.writer);
    members.set(path, { path, rawDigest: raw.digest, rawSize: raw.size, blob });
  }

  function resolveMember(p: string, what: string): Member {
    let path = cleanMemberPath(p);
    for (let i = 0; i < MAX_ALIAS_DEPTH; i++) {
      const m = members.get(path);
      if (m) return m;
      const next = aliases.get(path);
      if (next === undefined) break;
      path = next;
    }
    throw fail("MISSING_BLOB", `${what} ${JSON.stringify(p)} is not in the archive`);
  }

  function jsonOf<T>(m: Member, what: string): T {
    if (!m.json) throw fail("BAD_JSON", `${what} (member ${m.path}) is not a JSON document`);
    try {
      return JSON.parse(m.json.toString("utf8")) as T;
    } catch (e) {
      throw fail("BAD_JSON", `${what} (member ${m.path}) is not valid JSON: ${(e as Error).message}`);
    }
  }

  /** A member that was kept in memory is needed as a layer after all: stream it into the store now. */
  async function blobOf(m: Member): Promise<StoredBlob> {
    if (m.blob) return m.blob;
    const { blob } = await ingestBlob(store, Readable.from([m.json ?? Buffer.alloc(0)]), m.path, file, await budgetOnce(), signal);
    writers.add(blob.writer);
    m.blob = blob;
    return blob;
  }

  function verifyRaw(m: Member, expected: Digest | undefined, size: number | undefined, what: string): void {
    if (expected !== undefined && m.rawDigest !== expected) {
      throw fail("DIGEST_MISMATCH", `${what} (member ${m.path}) has digest ${m.rawDigest}, expected ${expected}`, "the archive is corrupt or was modified");
    }
    if (size !== undefined && m.rawSize !== size) throw fail("SIZE_MISMATCH", `${what} (member ${m.path}) has ${m.rawSize} bytes, expected ${size}`);
  }

  async function layerOf(m: Member, index: number, diffId: Digest | undefined, what: string): Promise<StoredBlob> {
    const blob = await blobOf(m);
    // Without a diff_id only the tar checks apply.
    const problem = storedLayerProblem(blob, diffId ?? blob.digest);
    if (problem) throw fail(problem.code, `layer ${index + 1} (member ${m.path}) ${problem.what}`, problem.hint);
    if (diffId === undefined) throw fail("DIFF_ID_COUNT", `${what}: the image config lists fewer diff_ids than there are layers`);
    return blob;
  }

  function configOf(m: Member, expected: Digest | undefined, what: string): { bytes: Buffer; digest: Digest; config: ImageConfig } {
    const config = jsonOf<ImageConfig>(m, what);
    if (expected !== undefined && m.rawDigest !== expected)
      throw fail("DIGEST_MISMATCH", `${what} (member ${m.path}) has digest ${m.rawDigest}, expected ${expected}`);
    if (typeof config !== "object" || config === null || !Array.isArray(config.rootfs?.diff_ids)) {
      throw fail("BAD_CONFIG", `${what} (member ${m.path}) is not an image config (no rootfs.diff_ids)`);
    }
    // Field types, so a crafted config fails here, naming the field, instead of crashing a later build.
    const problem = imageConfigProblem(config);
    if (problem) throw fail("BAD_CONFIG", `${what} (member ${m.path}): ${problem}`, "the image config is malformed; rebuild or re-export the image");
    return { bytes: m.json ?? Buffer.alloc(0), digest: m.rawDigest, config };
  }

  function nameOf(raw: string, where: string): string {
    try {
      return normalizeName(raw);
    } catch (e) {
      throw fail("BAD_NAME", `${where} names the image ${JSON.stringify(raw)}, which is not a valid reference: ${(e as Error).message}`);
    }
  }

  async function assemble(): Promise<PlannedGroup[]> {
    if (members.has("manifest.json")) return assembleDocker();
    if (members.has("index.json")) return assembleOci();
    throw fail(
      "UNKNOWN_FORMAT",
      "holds neither manifest.json (docker-archive) nor index.json (OCI layout)",
      members.size > 0
        ? "the file may be truncated (copy it again), or was not made by `docker save`, `skopeo copy ... docker-archive:` or `tsbuild save`"
        : "create it with `docker save`, `skopeo copy ... docker-archive:` or `tsbuild save`",
    );
  }

  async function assembleDocker(): Promise<PlannedGroup[]> {
    const list = jsonOf<unknown>(resolveMember("manifest.json", "manifest.json"), "manifest.json");
    if (!Array.isArray(list)) throw fail("BAD_MANIFEST", "manifest.json is not a list of images");
    const out: PlannedGroup[] = [];
    for (const [i, raw] of list.entries()) {
      const e = raw as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
      const where = `manifest.json entry ${i + 1}`;
      if (typeof e.Config !== "string" || !Array.isArray(e.Layers) || !e.Layers.every((l): l is string => typeof l === "string")) {
        throw fail("BAD_MANIFEST", `${where} needs Config (string) and Layers (list of strings)`);
      }
      const cfgMember = resolveMember(e.Config, `${where}: config`);
      const tagged = Array.isArray(e.RepoTags) && typeof e.RepoTags[0] === "string" ? ` (${e.RepoTags[0]})` : "";
      const cfg = configOf(cfgMember, digestInPath(e.Config), `${where}${tagged}: config`);
      const diffIds = cfg.config.rootfs.diff_ids;
      if (diffIds.length !== e.Layers.length) {
        throw fail("DIFF_ID_COUNT", `${where} lists ${e.Layers.length} layers, its config lists ${diffIds.length} diff_ids`);
      }
      const layers: StoredBlob[] = [];
      for (const [j, lp] of e.Layers.entries()) {
        const m = resolveMember(lp, `${where}: layer ${j + 1}`);
        // Docker 25+ names layer members by blob digest; that names the bytes as stored in the archive.
        if (/(?:^|\/)blobs\/sha256\/[a-f0-9]{64}$/.test(cleanMemberPath(lp))) verifyRaw(m, digestInPath(lp), undefined, `${where}: layer ${j + 1}`);
        layers.push(await layerOf(m, j, diffIds[j], `${where}: layer ${j + 1}`));
      }
      const tags = Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === "string") : [];
      const names = tags.map((t) => nameOf(t, where));
      out.push({ names, multi: false, images: [{ names, config: cfg.bytes, configDigest: cfg.digest, layers, platform: configPlatform(cfg.config) }] });
    }
    return out;
  }

  function blobMember(d: Descriptor, what: string): Member {
    if (typeof d?.digest !== "string" || !isDigest(d.digest)) throw fail("BAD_DESCRIPTOR", `${what} has no valid sha256 digest`);
    const m = resolveMember(`blobs/sha256/${d.digest.slice("sha256:".length)}`, what);
    verifyRaw(m, d.digest, typeof d.size === "number" ? d.size : undefined, what);
    return m;
  }

  /** The images a descriptor stands for: one manifest, or an index's platforms (all of them, or --platform's). */
  async function manifestImages(d: Descriptor, names: string[], what: string, depth = 0): Promise<PlannedImage[]> {
    if (depth > 4) throw fail("BAD_INDEX", `${what}: indexes nested too deeply`);
    const m = blobMember(d, what);
    const doc = jsonOf<Manifest | Index>(m, what);
    if (isIndexLike(d.mediaType, doc)) {
      const idx = doc as Index;
      if (!idx.manifests?.length) throw fail("NO_MANIFEST", `${what} (index ${d.digest}) lists no image manifest`);
      const platformed = idx.manifests.filter((e) => e.platform && !isAttestation(e));
      if (keepAll && platformed.length > 1) {
        const out: PlannedImage[] = [];
        for (const e of platformed) out.push(...(await manifestImages(e, names, `${what} → ${e.digest}`, depth + 1)));
        return out;
      }
      const pick = pickManifest(idx.manifests, want, { what: `${file}: ${what} (index ${d.digest})`, errorClass: ArchiveError });
      return manifestImages(pick, names, `${what} → ${pick.digest}`, depth + 1);
    }
    return [await manifestImage(d, doc as Manifest, names, what)];
  }

  async function manifestImage(d: Descriptor, man: Manifest, names: string[], what: string): Promise<PlannedImage> {
    if (!man.config || !Array.isArray(man.layers)) throw fail("BAD_MANIFEST", `${what} (${d.digest}) is not an image manifest`);
    const cfg = configOf(blobMember(man.config, `${what}: config`), man.config.digest, `${what}: config`);
    const diffIds = cfg.config.rootfs.diff_ids;
    if (diffIds.length !== man.layers.length) {
      throw fail("DIFF_ID_COUNT", `${what} lists ${man.layers.length} layers, its config lists ${diffIds.length} diff_ids`);
    }
    const layers: StoredBlob[] = [];
    for (const [j, l] of man.layers.entries()) {
      layers.push(await layerOf(blobMember(l, `${what}: layer ${j + 1}`), j, diffIds[j], `${what}: layer ${j + 1}`));
    }
    const platform = d.platform && !isAttestation(d) ? normalizePlatform(d.platform) : normalizePlatform(configPlatform(cfg.config));
    return { names, config: cfg.bytes, configDigest: cfg.digest, layers, platform };
  }

  function ociNames(d: Descriptor): string[] {
    const a = d.annotations ?? {};
    const full = a[ANNOTATION_IMAGE_NAME];
    if (full) return [nameOf(full, `index.json (${ANNOTATION_IMAGE_NAME})`)];
    const ref = a[ANNOTATION_REF_NAME];
    // A bare tag ("1.0", BuildKit style) names no repository; only a full reference can become a name.
    if (ref && (ref.includes(":") || ref.includes("/"))) return [nameOf(ref, `index.json (${ANNOTATION_REF_NAME})`)];
    return [];
  }

  async function assembleOci(): Promise<PlannedGroup[]> {
    const layout = members.get("oci-layout");
    if (layout) {
      const v = jsonOf<{ imageLayoutVersion?: unknown }>(layout, "oci-layout");
      if (typeof v.imageLayoutVersion !== "string" || !v.imageLayoutVersion.startsWith("1.")) {
        throw fail("BAD_LAYOUT", `oci-layout has an unsupported imageLayoutVersion ${JSON.stringify(v.imageLayoutVersion)}`);
      }
    }
    const index = jsonOf<Index>(resolveMember("index.json", "index.json"), "index.json");
    if (!Array.isArray(index.manifests)) throw fail("BAD_INDEX", "index.json has no manifests list");
    // Entries sharing a name (or all unnamed) that carry platforms are one multi-platform image: load one of them.
    const groups = new Map<string, { names: string[]; ds: Descriptor[] }>();
    for (const d of index.manifests) {
      const names = ociNames(d);
      const key = names.join("\n");
      const g = groups.get(key) ?? { names, ds: [] };
      g.ds.push(d);
      groups.set(key, g);
    }
    const out: PlannedGroup[] = [];
    for (const g of groups.values()) {
      const withPlatform = g.ds.filter((d) => d.platform && !isAttestation(d));
      const entry = (d: Descriptor) => `index.json entry ${index.manifests.indexOf(d) + 1}`;
      if (g.ds.length > 1 && withPlatform.length > 1) {
        if (keepAll) {
          const images: PlannedImage[] = [];
          for (const d of withPlatform) images.push(...(await manifestImages(d, g.names, entry(d))));
          out.push({ names: g.names, images, multi: true });
        } else {
          const pick = pickManifest(withPlatform, want, { what: `${file}: index.json${g.names[0] ? ` (${g.names[0]})` : ""}`, errorClass: ArchiveError });
          out.push({ names: g.names, images: await manifestImages(pick, g.names, entry(pick)), multi: false });
        }
        continue;
      }
      for (const d of g.ds) {
        const images = await manifestImages(d, g.names, entry(d));
        out.push({ names: g.names, images, multi: images.length > 1 });
      }
    }
    if (out.length === 0) throw fail("NO_MANIFEST", "index.json lists no images");
    return out;
  }

  async function commit(plan: PlannedGroup[]): Promise<LoadedImage[]> {
    let tag: string | undefined;
    if (opts.tag !== undefined) {
      if (plan.length !== 1) throw new UsageError("AMBIGUOUS_TAG", `--tag names one image, but ${file} holds ${plan.length}`);
      tag = normalizeName(opts.tag);
    }
    throwIfAborted(signal);
    // Everything verified: now blobs go into the store, then configs and manifests (and indexes), names last.
    const results: { names: string[]; manifest: Descriptor; config: Digest; platforms?: Platform[] }[] = [];
    for (const group of plan) {
      const manifests: Descriptor[] = [];
      for (const img of group.images) {
        for (const l of img.layers) {
          if (committed.has(l.writer)) continue;
          const r = await l.writer.commit();
          committed.add(l.writer);
          if (r.digest !== l.digest) throw new StoreError("DIGEST_MISMATCH", `stored layer ${r.digest} differs from the verified ${l.digest}`);
        }
        const cfg = await store.putBytes(img.config, img.configDigest);
        const manifest: Manifest = {
          schemaVersion: 2,
          mediaType: MediaType.OciManifest,
          config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
          layers: img.layers.map((l) => ({ mediaType: MediaType.OciLayer, digest: l.digest, size: l.size })),
        };
        const put = await store.putBytes(jsonBytes(manifest));
        manifests.push({ mediaType: MediaType.OciManifest, digest: put.digest, size: put.size, platform: img.platform });
      }
      const first = group.images[0] as PlannedImage;
      const names = [...new Set(tag ? [...group.names, tag] : group.names)];
      const top = group.multi
        ? await writeImageIndex(store, manifests)
        : { mediaType: MediaType.OciManifest, digest: (manifests[0] as Descriptor).digest, size: (manifests[0] as Descriptor).size };
      results.push({
        names,
        manifest: top,
        config: first.configDigest,
        ...(group.multi ? { platforms: group.images.map((i) => i.platform) } : {}),
      });
    }
    const out: LoadedImage[] = [];
    for (const r of results) {
      const extra = r.platforms ? { platforms: r.platforms } : {};
      for (const n of r.names) {
        await images.set(n, r.manifest);
        out.push({ name: n, manifest: r.manifest, config: r.config, ...extra });
      }
      if (r.names.length === 0) out.push({ manifest: r.manifest, config: r.config, ...extra });
    }
    return out;
  }
}
