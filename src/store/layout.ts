// The one owner of the store's on-disk layout: every directory and file name under the root, and which names are
// valid there. Other modules ask a StoreLayout instead of joining path literals, so the layout is read in one place.
// Existing stores must keep working (there is no migration): a name changed here is a format change.
//
//   blobs/sha256/<hex>                       content-addressed blobs (layers as uncompressed tars: digest = diff_id)
//   refs/<name key>.json[.lock]              image name → manifest or index descriptor (one file per name; the lock
//                                            while a pull adds a platform to the name's index)
//   compressed/gzip/<diff_id hex>.json       the cached gzip form of a layer {digest,size}
//   compressed/zstd/<diff_id hex>.json       the cached zstd form of a layer {digest,size}
//   distribution/<diff_id hex>.json          where a layer was pulled from / pushed to (a hint for push)
//   cache/steps/<key[0:2]>/<key>.json        step cache records
//   cache/images/<key>.json                  final-image cache records
//   cache/explain/<step id>.json             the key parts of a step's last build (--explain-cache)
//   cache/context/<context key>.json         stat cache of a build context's file hashes
//   cache/http/<url key>.json                what an ADD URL served last {url,etag,lastModified,digest} (conditional GET)
//   cache-mounts/<id hash>[.lock]            RUN --mount=type=cache directories and their locks
//   snapshots/<key>/                         unpacked filesystems of a step chain (overlay lowerdirs)
//   locks/gc.lock, locks/build-<pid>-<hex>.lock   the store's GC lock and the builds' shared locks
//   tmp/                                     temp files of atomic writes and builds' scratch dirs (same filesystem)
import { createHash } from "node:crypto";
import { join } from "node:path";
import { isDigest, type Digest } from "../image/types.js";
import { StoreError } from "../errors.js";

/** Cache keys (step, image, explain, context, snapshot) are Hasher.key() output: 32 lower-case hex digits. */
const STORE_KEY = /^[0-9a-f]{32}$/;

/** Is `s` a key the store may name a file after (see STORE_KEY)? */
export function isStoreKey(s: string): boolean {
  return STORE_KEY.test(s);
}

/** The 64 hex digits of a sha256 digest; refuses anything else before it can become a path. */
function hexOf(d: Digest): string {
  if (typeof d !== "string" || !isDigest(d))
    throw new StoreError("INVALID_DIGEST", `not a sha256 digest: ${String(d)}`, { hint: "a digest is sha256: followed by 64 lower-case hex digits" });
  return d.slice("sha256:".length);
}

function keyOf(what: string, key: string): string {
  if (typeof key !== "string" || !isStoreKey(key))
    throw new StoreError("INVALID_KEY", `not a ${what} key: ${JSON.stringify(String(key))}`, { hint: "cache keys are 32 lower-case hex digits" });
  return key;
}

// Ref file names stay readable (encodeURIComponent) unless they would approach NAME_MAX; then a hash keeps them
// short. The record itself carries the name, so the file name never has to be decoded.
const MAX_REF_FILE_NAME = 200;

/** The ref file name for an image name (without the .json suffix); never contains "/" and never starts with ".". */
export function refKey(name: string): string {
  const enc = encodeURIComponent(name).replace(/\*/g, "%2A");
  if (enc.length <= MAX_REF_FILE_NAME && !enc.startsWith(".")) return enc;
  return `sha256-${createHash("sha256").update(name, "utf8").digest("hex")}`;
}

/** Build lock files in locks/: `build-<pid>-<hex>.lock`; the pid is group 1. */
export const BUILD_LOCK_NAME = /^build-(\d+)-[0-9a-f]+\.lock$/;

/** The marker Engine.scratch() writes into a scratch dir under tmp/: the owner's pid, for stale-scratch cleanup. */
export const SCRATCH_OWNER_FILE = ".owner";

/** Every path of one store. Pure: creating one touches no file; members that take a name validate it. */
export interface StoreLayout {
  /** The store root (absolute when it came from the Engine). */
  readonly root: string;
  /** blobs/sha256/: one file per blob, named by the hex of its sha256 digest. */
  readonly blobsDir: string;
  /** The file of blob `d`; StoreError INVALID_DIGEST unless `d` is `sha256:<64 hex>`. */
  blob(d: Digest): string;
  /** The digest a file name in blobsDir stands for; undefined for anything else (temp files, strays). */
  blobDigest(fileName: string): Digest | undefined;
  /** refs/: one JSON image record per image name. */
  readonly refsDir: string;
  /** The ref file of an image name (refs/<refKey(name)>.json). */
  ref(name: string): string;
  /** tmp/: temp files of atomic writes and scratch dirs; on the store's filesystem so renames stay atomic. */
  readonly tmpDir: string;
  /** A mkdtemp() prefix in tmp/ for a scratch dir or temp tree named `name` (`tmp/<name>-`). */
  tmpPrefix(name: string): string;
  /** locks/: the GC lock and the builds' lock files. */
  readonly locksDir: string;
  /** locks/gc.lock: held exclusively by prune. */
  readonly gcLock: string;
  /** A build's shared lock file, locks/build-<pid>-<nonce>.lock (matches BUILD_LOCK_NAME). */
  buildLock(pid: number, nonce: string): string;
  /** cache/steps/: step cache records, sharded by the first two digits of the key. */
  readonly stepRecordsDir: string;
  /** cache/steps/<key[0:2]>/<key>.json; StoreError INVALID_KEY for a key that is not a store key. */
  stepRecord(key: string): string;
  /** cache/images/: final-image cache records. */
  readonly imageRecordsDir: string;
  /** cache/images/<key>.json. */
  imageRecord(key: string): string;
  /** cache/explain/: the key parts of each step's last build, for --explain-cache. */
  readonly explainDir: string;
  /** cache/explain/<stepId>.json. */
  explainRecord(stepId: string): string;
  /** cache/context/: stat caches of build contexts' file hashes. */
  readonly contextCacheDir: string;
  /** cache/context/<contextKey>.json. */
  contextCache(contextKey: string): string;
  /** cache/http/: per-URL records of ADD downloads (validators and content digest). */
  readonly httpRecordsDir: string;
  /** cache/http/<urlKey>.json; urlKey is Hasher.key() of the URL. */
  httpRecord(urlKey: string): string;
  /** compressed/gzip/: the cached gzip form of layers. */
  readonly compressedDir: string;
  /** compressed/zstd/: the cached zstd form of layers (same file names as compressedDir). */
  readonly compressedZstdDir: string;
  /** compressed/<format>/<diff_id hex>.json (default gzip); StoreError INVALID_DIGEST for a malformed diff_id. */
  compressed(diffId: Digest, format?: "gzip" | "zstd"): string;
  /** The layer a file name in compressedDir belongs to; undefined for anything else. */
  compressedLayer(fileName: string): Digest | undefined;
  /** distribution/: where each layer was pulled from or pushed to. */
  readonly distributionDir: string;
  /** distribution/<diff_id hex>.json. */
  layerSources(diffId: Digest): string;
  /** cache-mounts/: RUN --mount=type=cache directories (and `<dir>.lock` files next to them). */
  readonly cacheMountsDir: string;
  /** cache-mounts/<sha256 hex of id>: the directory of the cache mount with this id (any string: it is hashed). */
  cacheMount(id: string): string;
  /** snapshots/: unpacked filesystems kept between builds. */
  readonly snapshotsDir: string;
  /** snapshots/<key>/. */
  snapshot(key: string): string;
}

/** The layout of the store at `root`. */
export function storeLayout(root: string): StoreLayout {
  const blobsDir = join(root, "blobs", "sha256");
  const refsDir = join(root, "refs");
  const tmpDir = join(root, "tmp");
  const locksDir = join(root, "locks");
  const stepRecordsDir = join(root, "cache", "steps");
  const imageRecordsDir = join(root, "cache", "images");
  const explainDir = join(root, "cache", "explain");
  const contextCacheDir = join(root, "cache", "context");
  const httpRecordsDir = join(root, "cache", "http");
  const compressedDir = join(root, "compressed", "gzip");
  const distributionDir = join(root, "distribution");
  const snapshotsDir = join(root, "snapshots");
  const digestFrom = (hex: string): Digest | undefined => {
    const d = `sha256:${hex}`;
    return isDigest(d) ? d : undefined;
  };
  return {
    root,
    blobsDir,
    blob: (d) => join(blobsDir, hexOf(d)),
    blobDigest: (fileName) => digestFrom(fileName),
    refsDir,
    ref: (name) => join(refsDir, `${refKey(name)}.json`),
    tmpDir,
    tmpPrefix(name) {
      if (name === "" || name.includes("/") || name.startsWith(".")) throw new StoreError("INVALID_NAME", `not a scratch name: ${JSON.stringify(name)}`);
      return join(tmpDir, `${name}-`);
    },
    locksDir,
    gcLock: join(locksDir, "gc.lock"),
    buildLock(pid, nonce) {
      const name = `build-${pid}-${nonce}.lock`;
      if (!BUILD_LOCK_NAME.test(name)) throw new StoreError("INVALID_NAME", `not a build lock name: ${JSON.stringify(name)}`);
      return join(locksDir, name);
    },
    stepRecordsDir,
    stepRecord(key) {
      const k = keyOf("step cache", key);
      return join(stepRecordsDir, k.slice(0, 2), `${k}.json`);
    },
    imageRecordsDir,
    imageRecord: (key) => join(imageRecordsDir, `${keyOf("image cache", key)}.json`),
    explainDir,
    explainRecord: (stepId) => join(explainDir, `${keyOf("step id", stepId)}.json`),
    contextCacheDir,
    contextCache: (contextKey) => join(contextCacheDir, `${keyOf("context", contextKey)}.json`),
    httpRecordsDir,
    httpRecord: (urlKey) => join(httpRecordsDir, `${keyOf("url", urlKey)}.json`),
    compressedDir,
    compressedZstdDir: join(root, "compressed", "zstd"),
    compressed: (diffId, format = "gzip") => join(format === "zstd" ? join(root, "compressed", "zstd") : compressedDir, `${hexOf(diffId)}.json`),
    compressedLayer: (fileName) => (fileName.endsWith(".json") ? digestFrom(fileName.slice(0, -".json".length)) : undefined),
    distributionDir,
    layerSources: (diffId) => join(distributionDir, `${hexOf(diffId)}.json`),
    cacheMountsDir: join(root, "cache-mounts"),
    cacheMount: (id) => join(root, "cache-mounts", createHash("sha256").update(id).digest("hex")),
    snapshotsDir,
    snapshot: (key) => join(snapshotsDir, keyOf("snapshot", key)),
  };
}
