// Cache mounts that travel (--cache-to …,cache-mounts=true): the contents of RUN --mount=type=cache directories
// archived as tars beside the step records, and restored from an imported cache (--cache-from) into a store that
// has no directory of that id yet, so a CI runner's first build starts with a warm package cache.
//
// The rule: a cache mount directory the store already has is never replaced (local wins, however old: it is what
// this machine's builds made, and a cache mount has no version to compare). A restore is atomic: the tar is
// unpacked into a private temp dir under tmp/ and renamed into place only when complete, under the mount's lock.
// Imported tars are untrusted: no absolute names, no `..`, nothing written through a symlink, device nodes left
// out, and no more bytes than the store's free space minus a reserve (or a limit given).
import { chmod, chown, lstat, mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AbortError, ArchiveError, isTsbuildError, StoreError } from "../errors.js";
import { MediaType, type Digest } from "../image/types.js";
import { verifyingStream } from "../registry/verify-stream.js";
import { budgetedStream, decompressionBudget } from "../layer/compression.js";
import { dirEntries } from "../layer/dir-entries.js";
import { extractLayer } from "../layer/extract.js";
import { storeLayer } from "../layer/store-layer.js";
import { ensureCacheMountsDir, lockCacheMount } from "../store/cache-mount-dirs.js";
import { storeLayout } from "../store/layout.js";
import type { ContentStore } from "../store/types.js";
import { errnoCode } from "../util/errno.js";
import type { CacheMountEntry, CacheMountSharing } from "./cache-manifest.js";
import { ensureBlob, type CacheSource } from "./cache-source.js";
import { lstatMaybe } from "../util/lstat-maybe.js";

/** A cache mount a build's RUN steps declared (the first declaration of an id gives its sharing). */
export interface UsedCacheMount {
  id: string;
  sharing: CacheMountSharing;
}

/**
 * Archives each used cache mount directory the store has into the content store (one uncompressed tar each),
 * holding its lock so a locked/private user elsewhere never changes it mid-archive. Ids without a directory (every
 * RUN that declared them hit the cache, in a store that never ran them) are left out, and so is one that cannot be
 * archived (a file changing size, unreadable, a full disk): told to `onError`, as the records still export.
 */
export async function archiveCacheMounts(
  storeRoot: string,
  content: ContentStore,
  used: readonly UsedCacheMount[],
  opts: { signal: AbortSignal; onSkip?(id: string, path: string, why: string): void; onError?(id: string, message: string): void },
): Promise<CacheMountEntry[]> {
  const layout = storeLayout(storeRoot);
  const seen = new Set<string>();
  const out: CacheMountEntry[] = [];
  for (const u of used) {
    if (seen.has(u.id)) continue;
    seen.add(u.id);
    const dir = layout.cacheMount(u.id);
    if (!(await lstatMaybe(dir))?.isDirectory()) continue;
    const unlock = await lockCacheMount(dir, true, opts.signal);
    try {
      const st = await lstat(dir);
      const entries = await dirEntries(dir, { signal: opts.signal, onSkip: (p, why) => opts.onSkip?.(u.id, p, why) });
      const blob = await storeLayer(content, entries, { signal: opts.signal });
      out.push({
        id: u.id,
        sharing: u.sharing,
        uid: st.uid,
        gid: st.gid,
        mode: st.mode & 0o7777,
        blob: { digest: blob.diffId, size: blob.size },
        created: new Date().toISOString(),
      });
    } catch (e) {
      if (opts.signal.aborted || e instanceof AbortError || (!isTsbuildError(e) && errnoCode(e) === undefined)) throw e;
      opts.onError?.(u.id, (e as Error).message);
    } finally {
      await unlock?.();
    }
  }
  return out;
}

/** Passes a blob's bytes through, failing with BAD_CACHE past its size or at the end on a digest mismatch. */
function verified(blob: { digest: Digest; size: number }, from: string): Transform {
  return verifyingStream(
    { digest: blob.digest, size: blob.size, what: `the cache mount tar in ${from}` },
    (_kind, message) => new StoreError("BAD_CACHE", message, { hint: "export the cache again" }),
  );
}

export interface RestoredCacheMount {
  /** The cache it came from (CacheSource.name). */
  from: string;
  entry: CacheMountEntry;
  /** Device nodes the tar held, left out. */
  skippedDevices: number;
}

/**
 * Fills the cache mount directory `dir` (of `id`) from the first source that carries that id, unless `dir` exists.
 * The caller holds the mount's lock. Undefined when nothing was restored; a damaged, hostile or oversized tar is an
 * error (ArchiveError, StoreError) and leaves `dir` absent.
 */
export async function restoreCacheMount(
  storeRoot: string,
  content: ContentStore,
  sources: readonly CacheSource[],
  id: string,
  dir: string,
  opts: { signal: AbortSignal; limit?: number },
): Promise<RestoredCacheMount | undefined> {
  if (await lstatMaybe(dir)) return undefined;
  let source: CacheSource | undefined;
  let entry: CacheMountEntry | undefined;
  for (const s of sources) {
    entry = s.mount(id);
    if (entry) {
      source = s;
      break;
    }
  }
  if (!source || !entry) return undefined;
  const layout = storeLayout(storeRoot);
  await ensureCacheMountsDir(storeRoot);
  await mkdir(layout.tmpDir, { recursive: true });
  const blob = { mediaType: MediaType.OciLayer, digest: entry.blob.digest, size: entry.blob.size };
  // A source that can stream the tar has it unpacked as it arrives (verified on the way, renamed into place only
  // once verified); otherwise the blob is stored first, and needs the space twice.
  const direct = source.open !== undefined;
  const budget = await decompressionBudget(layout.tmpDir, opts.limit);
  if (entry.blob.size * (direct ? 1 : 2) > budget.limit)
    throw new ArchiveError(
      "CACHE_MOUNT_TOO_LARGE",
      `the cache mount ${JSON.stringify(id)} in ${source.name} needs ${entry.blob.size * (direct ? 1 : 2)} bytes, more than the ${budget.limit} allowed (${budget.why})`,
      { hint: "free disk space in the store, or export the cache without cache-mounts=true" },
    );
  if (!direct) await ensureBlob(content, source, blob, opts.signal);
  // tmp/ is on the store's filesystem (so the rename is atomic), and a killed restore's leftovers are cleaned with it.
  const temp = await mkdtemp(layout.tmpPrefix("cache-mount"));
  try {
    const unpacked = join(temp, "d");
    await mkdir(unpacked, { mode: 0o700 });
    let skippedDevices = 0;
    const bytes = budgetedStream(budget, `the cache mount ${JSON.stringify(id)}`);
    const input = source.open ? source.open(blob, opts.signal) : content.read(blob.digest);
    const feeding = pipeline(input, verified(blob, source.name), bytes);
    feeding.catch(() => undefined);
    try {
      await extractLayer(bytes, unpacked, { plainTar: true, skipDevices: () => skippedDevices++, signal: opts.signal });
      // Digest and size are known only at the end: until then nothing unpacked is in place.
      await feeding;
    } catch (e) {
      bytes.destroy();
      // A size or digest mismatch found first explains whatever the parser made of the bytes.
      const fed = await feeding.then(
        () => undefined,
        (err: unknown) => err,
      );
      if (isTsbuildError(fed)) throw fed;
      if (isTsbuildError(e)) throw e;
      throw new ArchiveError("CORRUPT_ARCHIVE", `the cache mount tar ${blob.digest} in ${source.name} cannot be read: ${(e as Error).message}`, {
        cause: e,
        hint: "export the cache again",
      });
    }
    // chown first: it clears setuid/setgid bits, which chmod then sets. Unprivileged, files stay ours.
    if (process.getuid?.() === 0) await chown(unpacked, entry.uid, entry.gid);
    await chmod(unpacked, entry.mode);
    // Local wins even against a directory that appeared while we unpacked (a shared mount takes no lock to run).
    if (await lstatMaybe(dir)) return undefined;
    try {
      await rename(unpacked, dir);
    } catch (e) {
      if (errnoCode(e) === "ENOTEMPTY" || errnoCode(e) === "EEXIST") return undefined;
      throw e;
    }
    return { from: source.name, entry, skippedDevices };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
