// Prune: decide what to delete (planPrune, which only reads) and delete it (executePrune), under the GC lock (prune).
// Never removes anything reachable from a tagged image. Deletion order — tmp, records, compressed entries, blobs —
// keeps a store that is killed mid-prune consistent: a record never points at a blob that went before it.
import { lstat, rmdir, unlink } from "node:fs/promises";
import { basename, dirname, resolve, sep } from "node:path";
import type { Digest } from "../image/types.js";
import { StoreError, throwIfAborted } from "../errors.js";
import { scanStore, liveSet, type CacheRecordInfo, type StoreScan } from "./disk-usage.js";
import { storeLayout } from "./layout.js";
import { acquireGcLock, removeScratchEntry, scratchOwnerAlive } from "./locks.js";
import { errnoCode } from "../util/errno.js";

export interface PruneOptions {
  /** Remove every step/image cache record, explain and context caches and cache mounts (tagged images stay). */
  all?: boolean;
  /** Then remove least-recently-used cache records until the store's total size is at most this many bytes. */
  keepStorage?: number;
  /** Also remove cache records not used for this many milliseconds. */
  until?: number;
  /** "Now" for `until` (ms since the epoch); defaults to Date.now(). */
  now?: number;
}

export type PruneCategory =
  "tmp" | "broken-records" | "step-records" | "image-records" | "compressed" | "blobs" | "explain" | "context" | "cache-mounts" | "snapshots";

export interface PruneItem {
  category: PruneCategory;
  path: string;
  size: number;
  /** For blobs. */
  digest?: Digest;
}

export interface PrunePlan {
  root: string;
  /** In deletion order. */
  items: PruneItem[];
  /** Bytes the items add up to. */
  reclaimable: number;
  /** The store's size once the plan has run (every byte except locks/). */
  sizeAfter: number;
}

export interface PruneResult {
  removed: PruneItem[];
  /** Items left alone, with why (a scratch dir whose mounts could not be unmounted). */
  skipped: { item: PruneItem; reason: string }[];
  reclaimed: number;
}

/** Execution order of the categories; see the module comment. */
export const PRUNE_ORDER: readonly PruneCategory[] = [
  "tmp",
  "snapshots",
  "broken-records",
  "step-records",
  "image-records",
  "compressed",
  "blobs",
  "explain",
  "context",
  "cache-mounts",
];

const sum = (items: Iterable<{ size: number }>) => {
  let n = 0;
  for (const i of items) n += i.size;
  return n;
};

/** Store size if exactly `kept` records remain (tmp/ emptied, caches dropped when `dropCaches`). */
function sizeWith(scan: StoreScan, kept: readonly CacheRecordInfo[], dropCaches: boolean, tmpKept: number, snapshotsKept: number): number {
  const live = liveSet(scan, kept);
  let blobs = 0;
  for (const d of live.blobs) blobs += scan.blobs.get(d) ?? 0;
  const caches = dropCaches ? 0 : sum(scan.explain) + sum(scan.context) + sum(scan.cacheMounts);
  return sum(scan.refs) + sum(kept) + sum(live.compressed) + blobs + caches + tmpKept + snapshotsKept;
}

/**
 * Decide what a prune removes. Default: dangling data only — blobs reachable from no tagged image, no cache record
 * and no compressed entry that is itself alive; broken records (a blob they need is missing); compressed entries
 * whose layer or gzip blob is gone; tmp/ entries no live process owns. `until` and `keepStorage` add cache records by
 * last use, `all` adds every record and the explain/context caches and cache mounts. Only reads the store.
 */
export async function planPrune(root: string, opts: PruneOptions = {}): Promise<PrunePlan> {
  const needSizes = opts.keepStorage !== undefined || opts.all === true;
  const scan = await scanStore(root, { measureCacheMounts: needSizes });
  if (scan.corruptRefs.length > 0) {
    // An unreadable ref still names an image someone wants; its blobs would look dangling. Refuse rather than guess.
    throw new StoreError("REF_CORRUPT", `cannot prune: ${scan.corruptRefs.join("; ")}`, {
      hint: "fix or delete that file under refs/ (tsbuild rmi NAME), then run prune again",
    });
  }
  const items: PruneItem[] = [];

  // tmp/: with the GC lock held no build runs, so only entries of other live writers (load, tag) are kept.
  let tmpKept = 0;
  for (const t of scan.tmp) {
    let isDir = false;
    try {
      isDir = (await lstat(t.path)).isDirectory();
    } catch {
      continue;
    }
    if ((await scratchOwnerAlive(t.path, basename(t.path), isDir)) === true) tmpKept += t.size;
    else items.push({ category: "tmp", path: t.path, size: t.size });
  }

  // Snapshots are unpacked layers, rebuilt on demand: --all, --keep-storage and until= remove them (no build runs
  // under the GC lock, so none is an overlay lowerdir right now).
  let snapshotsKept = 0;
  const now0 = opts.now ?? Date.now();
  for (const sn of scan.snapshots) {
    if (opts.all || opts.keepStorage !== undefined || (opts.until !== undefined && now0 - sn.lastUsed >= opts.until))
      items.push({ category: "snapshots", path: sn.path, size: sn.size });
    else snapshotsKept += sn.size;
  }

  const removeRecord = new Set<CacheRecordInfo>();
  for (const r of scan.records) if (r.broken) removeRecord.add(r);
  const now = opts.now ?? Date.now();
  for (const r of scan.records) {
    if (opts.all) removeRecord.add(r);
    else if (opts.until !== undefined && now - r.lastUsed >= opts.until) removeRecord.add(r);
  }
  if (opts.keepStorage !== undefined && !opts.all) {
    // Size after dropping the k least recently used records shrinks as k grows: binary search the smallest k.
    const lru = scan.records.filter((r) => !removeRecord.has(r)).sort((a, b) => a.lastUsed - b.lastUsed || (a.path < b.path ? -1 : 1));
    const sizeAfterDropping = (k: number) => sizeWith(scan, lru.slice(k), false, tmpKept, snapshotsKept);
    let lo = 0;
    let hi = lru.length;
    if (sizeAfterDropping(hi) > opts.keepStorage)
      lo = hi; // even dropping all is not enough: drop all
    else {
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sizeAfterDropping(mid) <= opts.keepStorage) hi = mid;
        else lo = mid + 1;
      }
    }
    for (const r of lru.slice(0, lo)) removeRecord.add(r);
  }
  for (const r of scan.records) {
    if (!removeRecord.has(r)) continue;
    const category: PruneCategory = r.broken ? "broken-records" : r.kind === "step" ? "step-records" : "image-records";
    items.push({ category, path: r.path, size: r.size });
  }

  const kept = scan.records.filter((r) => !removeRecord.has(r));
  const live = liveSet(scan, kept);
  const keptCompressed = new Set(live.compressed);
  for (const c of scan.compressed) if (!keptCompressed.has(c)) items.push({ category: "compressed", path: c.path, size: c.size });
  const layout = storeLayout(root);
  for (const [d, size] of scan.blobs) {
    if (!live.blobs.has(d)) items.push({ category: "blobs", path: layout.blob(d), size, digest: d });
  }
  if (opts.all) {
    for (const f of scan.explain) items.push({ category: "explain", path: f.path, size: f.size });
    for (const f of scan.context) items.push({ category: "context", path: f.path, size: f.size });
    for (const f of scan.cacheMounts) items.push({ category: "cache-mounts", path: f.path, size: f.size });
  }
  items.sort((a, b) => PRUNE_ORDER.indexOf(a.category) - PRUNE_ORDER.indexOf(b.category));
  return { root, items, reclaimable: sum(items), sizeAfter: sizeWith(scan, kept, opts.all === true, tmpKept, snapshotsKept) };
}

/**
 * Delete what `plan` lists, in its order. Each deletion is a single unlink (or a recursive remove of a tmp/ or
 * cache-mount dir), so a prune killed at any point leaves a usable store; running prune again finishes the job.
 * Call only while holding the GC lock (see prune()).
 */
export async function executePrune(root: string, plan: PrunePlan, signal?: AbortSignal): Promise<PruneResult> {
  // A plan is data: refuse one that names paths outside this store rather than delete them.
  const prefix = resolve(root) + sep;
  const outside = plan.items.find((i) => !resolve(i.path).startsWith(prefix));
  if (outside) throw new StoreError("PRUNE_PLAN_INVALID", `prune plan names ${outside.path}, which is outside the store ${root}`);
  const stepRecordsDir = storeLayout(root).stepRecordsDir;
  const removed: PruneItem[] = [];
  const skipped: PruneResult["skipped"] = [];
  const shards = new Set<string>();
  for (const item of plan.items) {
    throwIfAborted(signal);
    if (item.category === "tmp" || item.category === "cache-mounts" || item.category === "snapshots") {
      if (await removeScratchEntry(item.path)) removed.push(item);
      else skipped.push({ item, reason: "something is still mounted below it" });
      continue;
    }
    try {
      await unlink(item.path);
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw e;
    }
    removed.push(item);
    if (item.category !== "blobs" && dirname(dirname(resolve(item.path))) === resolve(stepRecordsDir)) shards.add(dirname(item.path));
  }
  // Empty step-record shard dirs go too; a shard someone still writes into is simply not empty.
  for (const d of shards) await rmdir(d).catch(() => undefined);
  return { removed, skipped, reclaimed: sum(removed) };
}

/** Plan and execute a prune under the exclusive GC lock; fails with STORE_BUSY while a build runs on the store. */
export async function prune(root: string, opts: PruneOptions = {}, signal?: AbortSignal): Promise<PruneResult & { plan: PrunePlan }> {
  try {
    await lstat(root);
  } catch (e) {
    // No store yet: nothing to prune, and taking the lock would create one.
    if (errnoCode(e) === "ENOENT") return { plan: { root, items: [], reclaimable: 0, sizeAfter: 0 }, removed: [], skipped: [], reclaimed: 0 };
    throw e;
  }
  const lock = await acquireGcLock(root);
  try {
    const plan = await planPrune(root, opts);
    return { plan, ...(await executePrune(root, plan, signal)) };
  } finally {
    await lock.release();
  }
}
