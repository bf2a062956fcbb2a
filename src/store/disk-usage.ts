// What the store holds and who holds it: one scan of refs, cache records, compressed-layer entries, blobs, cache
// mounts and tmp/, plus blob reachability. `tsbuild du` reports it; prune (gc.ts) plans its deletions from it.
import type { Dirent } from "node:fs";
import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { isIndexMediaType } from "../image/media-types.js";
import { isDigest, type Descriptor, type Digest, type Index, type Manifest } from "../image/types.js";
import { openContentStore } from "./content-store.js";
import { openImageStore } from "./image-store.js";
import { storeLayout } from "./layout.js";
import { gzipMappingBlob, imageRecordNeeds, stepRecordNeeds } from "./record-formats.js";
import { errnoCode } from "../util/errno.js";

export interface FileItem {
  path: string;
  /** Bytes: a file's size, or the total size of the regular files in a directory tree. */
  size: number;
}

/** A step-cache or final-image cache record. */
export interface CacheRecordInfo extends FileItem {
  kind: "step" | "image";
  /** The record's key (hex), from its file name. */
  key: string;
  /** Last use: the record file's mtime (builds touch it on every hit), ms since the epoch. */
  lastUsed: number;
  /** The blobs this record needs (present or not). */
  blobs: Digest[];
  /** Unreadable, or a blob it needs is missing: useless to a build (which treats it as a miss). */
  broken: boolean;
}

/** compressed/{gzip,zstd}/<diff_id hex>.json: the cached compressed form of a layer. */
export interface CompressedInfo extends FileItem {
  layer: Digest;
  /** The gzip blob; undefined when the entry is unreadable. */
  blob?: Digest;
}

export interface StoreScan {
  root: string;
  /** Every blob in blobs/sha256 with its size. */
  blobs: Map<Digest, number>;
  /** refs/*.json files. */
  refs: FileItem[];
  /** Why ref files could not be read: their images' blobs are unknown, so nothing may be deleted as dangling. */
  corruptRefs: string[];
  /** Blobs reachable from tagged images (manifests, configs, layers; not their gzip forms). */
  tagged: Set<Digest>;
  records: CacheRecordInfo[];
  compressed: CompressedInfo[];
  /** cache/explain and cache/context files. */
  explain: FileItem[];
  context: FileItem[];
  /** cache-mounts/<id> directories (size 0 unless measured). */
  cacheMounts: FileItem[];
  /** Kept unpacked filesystems (snapshots/<key>), with their last use (dir mtime). */
  snapshots: (FileItem & { lastUsed: number })[];
  /** tmp/ entries. */
  tmp: FileItem[];
}

export interface ScanOptions {
  /** Walk cache-mounts/ to size each directory (can be large); default true. */
  measureCacheMounts?: boolean;
}

async function readdirOrEmpty(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return [];
    throw e;
  }
}

/**
 * Total size of the regular files under `path` (or of the file itself). Hard links count once; mount points below
 * it are not entered (a leftover overlay mount is not the store's data).
 */
export async function treeSize(path: string): Promise<number> {
  let top;
  try {
    top = await lstat(path);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return 0;
    throw e;
  }
  if (!top.isDirectory()) return top.isFile() ? top.size : 0;
  const seen = new Set<string>();
  let total = 0;
  const stack = [path];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    for (const e of await readdirOrEmpty(dir)) {
      const p = join(dir, e.name);
      let st;
      try {
        st = await lstat(p);
      } catch {
        continue; // vanished meanwhile
      }
      if (st.dev !== top.dev) continue;
      if (st.isDirectory()) stack.push(p);
      else if (st.isFile()) {
        const id = `${st.ino}`;
        if (st.nlink > 1) {
          if (seen.has(id)) continue;
          seen.add(id);
        }
        total += st.size;
      }
    }
  }
  return total;
}

/** Regular .json files directly in `dir` (dot files are temp files of in-flight writes). */
async function jsonFiles(dir: string): Promise<(FileItem & { name: string; mtime: number })[]> {
  const out: (FileItem & { name: string; mtime: number })[] = [];
  for (const e of await readdirOrEmpty(dir)) {
    if (!e.isFile() || e.name.startsWith(".") || !e.name.endsWith(".json")) continue;
    const path = join(dir, e.name);
    try {
      const st = await lstat(path);
      out.push({ path, name: e.name, size: st.size, mtime: st.mtimeMs });
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw err;
    }
  }
  return out;
}

async function readJsonFile(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Every blob an image (manifest or index) needs, following indexes; `complete` is false when one of them is missing
 * or a manifest cannot be read.
 */
export async function imageBlobs(root: string, top: Descriptor, present: ReadonlyMap<Digest, number>): Promise<{ blobs: Digest[]; complete: boolean }> {
  const content = openContentStore(root);
  const out = new Set<Digest>();
  let complete = true;
  const visit = async (d: Descriptor, depth: number): Promise<void> => {
    if (!isDigest(d.digest) || depth > 8) {
      complete = false;
      return;
    }
    out.add(d.digest);
    if (!present.has(d.digest)) {
      complete = false;
      return;
    }
    let doc: Partial<Manifest & Index>;
    try {
      doc = await content.readJson<Partial<Manifest & Index>>(d.digest);
    } catch {
      complete = false;
      return;
    }
    if (Array.isArray(doc.manifests) || isIndexMediaType(d.mediaType)) {
      for (const m of doc.manifests ?? []) await visit(m, depth + 1);
      return;
    }
    for (const b of [doc.config, ...(doc.layers ?? [])]) {
      if (!b || typeof b.digest !== "string" || !isDigest(b.digest)) {
        complete = false;
        continue;
      }
      out.add(b.digest);
      if (!present.has(b.digest)) complete = false;
    }
  };
  await visit(top, 0);
  return { blobs: [...out], complete };
}

/** A record file's entry before its blobs are known (`<key>.json`: the key is the name without the extension). */
function recordInfo(kind: CacheRecordInfo["kind"], f: { path: string; name: string; size: number; mtime: number }, broken: boolean): CacheRecordInfo {
  return { kind, path: f.path, key: f.name.slice(0, -5), size: f.size, lastUsed: f.mtime, blobs: [], broken };
}

async function scanRecords(root: string, blobs: ReadonlyMap<Digest, number>): Promise<CacheRecordInfo[]> {
  const out: CacheRecordInfo[] = [];
  const layout = storeLayout(root);
  for (const shard of await readdirOrEmpty(layout.stepRecordsDir)) {
    if (!shard.isDirectory()) continue;
    for (const f of await jsonFiles(join(layout.stepRecordsDir, shard.name))) {
      const needs = stepRecordNeeds(await readJsonFile(f.path));
      const rec = recordInfo("step", f, needs === "broken");
      // A step without a layer (metadata only) needs no blob. Other versions are opaque: kept by default, their
      // blobs unknown (a later build treats them as a miss).
      if (Array.isArray(needs)) {
        rec.blobs = needs;
        rec.broken = needs.some((d) => !blobs.has(d));
      }
      out.push(rec);
    }
  }
  for (const f of await jsonFiles(layout.imageRecordsDir)) {
    const needs = imageRecordNeeds(await readJsonFile(f.path));
    const rec = recordInfo("image", f, needs === "broken");
    if (typeof needs === "object") {
      const r = await imageBlobs(root, needs, blobs);
      rec.blobs = r.blobs;
      rec.broken = !r.complete;
    }
    out.push(rec);
  }
  return out;
}

/** Read everything prune and du need to know about the store at `root`. */
export async function scanStore(root: string, opts: ScanOptions = {}): Promise<StoreScan> {
  const layout = storeLayout(root);
  const blobs = new Map<Digest, number>();
  for (const e of await readdirOrEmpty(layout.blobsDir)) {
    const d = layout.blobDigest(e.name);
    if (!e.isFile() || d === undefined) continue;
    try {
      blobs.set(d, (await lstat(layout.blob(d))).size);
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw err;
    }
  }

  const refs = (await jsonFiles(layout.refsDir)).map((f) => ({ path: f.path, size: f.size }));
  const tagged = new Set<Digest>();
  const corruptRefs: string[] = [];
  for (const r of await openImageStore(root, { onWarning: (m) => corruptRefs.push(m) }).list()) {
    for (const d of (await imageBlobs(root, r.target, blobs)).blobs) tagged.add(d);
  }

  const compressed: CompressedInfo[] = [];
  for (const f of [...(await jsonFiles(layout.compressedDir)), ...(await jsonFiles(layout.compressedZstdDir))]) {
    const layer = layout.compressedLayer(f.name);
    if (layer === undefined) continue;
    const blob = gzipMappingBlob(await readJsonFile(f.path));
    compressed.push({ path: f.path, size: f.size, layer, ...(blob ? { blob } : {}) });
  }

  const files = async (dir: string) => (await jsonFiles(dir)).map((f) => ({ path: f.path, size: f.size }));
  const dirItems = async (dir: string, measure: boolean) => {
    const out: FileItem[] = [];
    for (const e of await readdirOrEmpty(dir)) {
      const path = join(dir, e.name);
      out.push({ path, size: measure ? await treeSize(path) : 0 });
    }
    return out;
  };

  return {
    root,
    blobs,
    refs,
    corruptRefs,
    tagged,
    records: await scanRecords(root, blobs),
    compressed,
    explain: await files(layout.explainDir),
    context: await files(layout.contextCacheDir),
    cacheMounts: await dirItems(layout.cacheMountsDir, opts.measureCacheMounts ?? true),
    snapshots: await Promise.all(
      (await dirItems(layout.snapshotsDir, opts.measureCacheMounts ?? true)).map(async (i) => ({
        ...i,
        lastUsed: (await lstat(i.path).catch(() => undefined))?.mtimeMs ?? 0,
      })),
    ),
    tmp: await dirItems(layout.tmpDir, true),
  };
}

/** Blobs (and compressed entries) that stay alive when only `kept` records remain. */
export function liveSet(scan: StoreScan, kept: Iterable<CacheRecordInfo>): { blobs: Set<Digest>; compressed: CompressedInfo[] } {
  const live = new Set<Digest>();
  for (const d of scan.tagged) if (scan.blobs.has(d)) live.add(d);
  for (const r of kept) if (!r.broken) for (const d of r.blobs) if (scan.blobs.has(d)) live.add(d);
  // A compressed entry lives while its layer does and its gzip blob exists; it holds that blob.
  const keptCompressed: CompressedInfo[] = [];
  const pending = scan.compressed.filter((c) => c.blob !== undefined && scan.blobs.has(c.blob));
  for (let changed = true; changed;) {
    changed = false;
    for (let i = pending.length - 1; i >= 0; i--) {
      const c = pending[i] as CompressedInfo;
      if (!live.has(c.layer)) continue;
      keptCompressed.push(c);
      pending.splice(i, 1);
      live.add(c.blob as Digest);
      changed = true;
    }
  }
  return { blobs: live, compressed: keptCompressed };
}

const sum = (items: Iterable<{ size: number }>) => {
  let n = 0;
  for (const i of items) n += i.size;
  return n;
};

export interface UsageRow {
  /** How many: image names, cache records, cache mounts, blobs, tmp entries. */
  count: number;
  /** Of those, how many are in use (tagged images: all; others: not reported). */
  active?: number;
  size: number;
  /** What prune can free: default prune for unreferenced data and tmp, `prune --all` for the build cache. */
  reclaimable: number;
}

export interface DiskUsage {
  images: UsageRow;
  buildCache: UsageRow;
  cacheMounts: UsageRow;
  snapshots: UsageRow;
  unreferenced: UsageRow;
  tmp: UsageRow;
  /** Sum of the rows: every byte of the store except locks/. */
  total: number;
  records: { kind: "step" | "image"; key: string; size: number; lastUsed: number; broken: boolean }[];
}

/** `tsbuild du`: usage by category. Blobs shared by a tagged image and the cache count as the image's. */
export async function diskUsage(root: string): Promise<DiskUsage> {
  const scan = await scanStore(root);
  const size = (d: Digest) => scan.blobs.get(d) ?? 0;

  // Images: tagged blobs, the gzip forms of their layers, the ref files.
  const imageLive = liveSet(scan, []);
  const imageBlobSet = imageLive.blobs;
  const imagesSize = sum(scan.refs) + [...imageBlobSet].reduce((n, d) => n + size(d), 0) + sum(imageLive.compressed);

  // Build cache: records, explain/context files, and the blobs only the cache holds (with their gzip forms).
  const all = liveSet(scan, scan.records);
  const cacheBlobs = [...all.blobs].filter((d) => !imageBlobSet.has(d));
  const imageCompressed = new Set(imageLive.compressed);
  const cacheCompressed = all.compressed.filter((c) => !imageCompressed.has(c));
  const cacheSize = sum(scan.records) + sum(scan.explain) + sum(scan.context) + cacheBlobs.reduce((n, d) => n + size(d), 0) + sum(cacheCompressed);

  // Unreferenced: blobs nothing holds and compressed entries whose layer or blob is gone.
  const keptCompressed = new Set(all.compressed);
  const danglingBlobs = [...scan.blobs.keys()].filter((d) => !all.blobs.has(d));
  const danglingCompressed = scan.compressed.filter((c) => !keptCompressed.has(c));
  const unrefSize = danglingBlobs.reduce((n, d) => n + size(d), 0) + sum(danglingCompressed);

  const rows = {
    images: { count: scan.refs.length, active: scan.refs.length, size: imagesSize, reclaimable: 0 },
    buildCache: { count: scan.records.length, size: cacheSize, reclaimable: cacheSize },
    cacheMounts: { count: scan.cacheMounts.length, size: sum(scan.cacheMounts), reclaimable: sum(scan.cacheMounts) },
    snapshots: { count: scan.snapshots.length, size: sum(scan.snapshots), reclaimable: sum(scan.snapshots) },
    unreferenced: { count: danglingBlobs.length, active: 0, size: unrefSize, reclaimable: unrefSize },
    tmp: { count: scan.tmp.length, size: sum(scan.tmp), reclaimable: sum(scan.tmp) },
  };
  return {
    ...rows,
    total: rows.images.size + rows.buildCache.size + rows.cacheMounts.size + rows.snapshots.size + rows.unreferenced.size + rows.tmp.size,
    records: scan.records
      .map((r) => ({ kind: r.kind, key: r.key, size: r.size + r.blobs.reduce((n, d) => n + size(d), 0), lastUsed: r.lastUsed, broken: r.broken }))
      .sort((a, b) => b.lastUsed - a.lastUsed),
  };
}
