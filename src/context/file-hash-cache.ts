// Content hashes of context files with a stat cache in the store (size, mtime, ctime, inode → hash), so a rebuild
// re-reads only files whose stat changed. Entries written within a clock tick of a change are not trusted (racy-git rule).
import type { Stats } from "node:fs";
import { closeSync, createReadStream, openSync } from "node:fs";
import { readUpTo } from "../util/read-up-to.js";
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../store/atomic-write.js";
import { storeLayout } from "../store/layout.js";
import type { Hasher } from "../util/hasher.js";
import { throwIfAborted } from "../errors.js";

/** [size, mtimeMs, ctimeMs, ino, hash] */
type Entry = [number, number, number, number, string];

interface CacheFile {
  v: 1;
  root: string;
  files: Record<string, Entry>;
}

export interface FileHashCache {
  /** The cached hash when the file's stat is unchanged (no I/O), else undefined. */
  lookup(rel: string, st: Stats): string | undefined;
  /** Content hash of the regular file `abs` whose lstat is `st`; `rel` names it in the cache. */
  hash(abs: string, rel: string, st: Stats, signal?: AbortSignal): Promise<string>;
  /**
   * hash() in one synchronous read for a file of at most SMALL_FILE_MAX bytes (undefined for a larger one): a
   * promise per small file cost several times the read itself (a cold 5,000-file digest spent ~400 ms waiting).
   */
  hashSmallSync(abs: string, rel: string, st: Stats): string | undefined;
  /** Persist new entries (atomic); a no-op when nothing changed. */
  save(): Promise<void>;
  /** Files served from the stat cache / read and hashed, and bytes read, for benchmarks and --explain-cache. */
  readonly counters: { cached: number; hashed: number; bytes: number };
}

/** Timestamps this close to the hashing time may hide a later change with the same mtime (coarse kernel clock). */
const RACY_MS = 50;
/** Files up to this size are read in one call (synchronously by hashSmallSync). */
const SMALL_FILE_MAX = 1 << 20;
/** Entries not seen in a build are kept for other targets, up to this many. */
const MAX_KEPT = 200_000;

export function fileHashCachePath(storeRoot: string, hasher: Hasher, contextRoot: string): string {
  return storeLayout(storeRoot).contextCache(hasher.key(contextRoot));
}

export async function openFileHashCache(storeRoot: string, contextRoot: string, hasher: Hasher): Promise<FileHashCache> {
  const file = fileHashCachePath(storeRoot, hasher, contextRoot);
  let old: Record<string, Entry> = {};
  try {
    const parsed = JSON.parse(await readFile(file, "utf8")) as CacheFile;
    // A cache for another directory (hash collision) or an unknown version is ignored, never trusted.
    if (parsed.v === 1 && parsed.root === contextRoot && parsed.files && typeof parsed.files === "object") old = parsed.files;
  } catch {
    /* absent or damaged (e.g. a killed write of an older version): start empty */
  }
  const fresh = new Map<string, Entry>();
  let dirty = false;
  const counters = { cached: 0, hashed: 0, bytes: 0 };
  /** hashSmallSync's read buffer, one per cache: no allocation per file. */
  let scratch: Buffer | undefined;

  async function contentHash(abs: string, size: number, signal?: AbortSignal): Promise<string> {
    counters.hashed++;
    counters.bytes += size;
    if (size <= SMALL_FILE_MAX) return hasher.bytes(await readFile(abs, signal ? { signal } : {}));
    const h = hasher.stream();
    for await (const chunk of createReadStream(abs, { highWaterMark: SMALL_FILE_MAX, ...(signal ? { signal } : {}) })) h.update(chunk as Buffer);
    return h.digest();
  }

  function lookup(rel: string, st: Stats): string | undefined {
    const known = fresh.get(rel) ?? old[rel];
    if (!known || known[0] !== st.size || known[1] !== st.mtimeMs || known[2] !== st.ctimeMs || known[3] !== st.ino) return undefined;
    counters.cached++;
    if (!fresh.has(rel)) fresh.set(rel, known);
    return known[4];
  }

  /** Remembers a hash read at `startedAt`, unless the file changed too recently to trust its stat. */
  function remember(rel: string, st: Stats, startedAt: number, hash: string): string {
    if (Math.max(st.mtimeMs, st.ctimeMs) < startedAt - RACY_MS) {
      fresh.set(rel, [st.size, st.mtimeMs, st.ctimeMs, st.ino, hash]);
      dirty = true;
    }
    return hash;
  }

  return {
    counters,
    lookup,
    async hash(abs, rel, st, signal) {
      throwIfAborted(signal);
      const known = lookup(rel, st);
      if (known !== undefined) return known;
      const startedAt = Date.now();
      return remember(rel, st, startedAt, await contentHash(abs, st.size, signal));
    },
    hashSmallSync(abs, rel, st) {
      if (st.size > SMALL_FILE_MAX) return undefined;
      const known = lookup(rel, st);
      if (known !== undefined) return known;
      const startedAt = Date.now();
      scratch ??= Buffer.allocUnsafe(SMALL_FILE_MAX + 1);
      const fd = openSync(abs, "r");
      let n: number;
      try {
        n = readUpTo(fd, scratch, scratch.length);
      } finally {
        closeSync(fd);
      }
      // Grown past the limit since its lstat: hash() streams it.
      if (n > SMALL_FILE_MAX) return undefined;
      counters.hashed++;
      counters.bytes += n;
      return remember(rel, st, startedAt, hasher.bytes(scratch.subarray(0, n)));
    },
    async save() {
      if (!dirty) return;
      const files: Record<string, Entry> = {};
      let kept = 0;
      for (const [rel, e] of Object.entries(old)) {
        if (fresh.has(rel) || kept >= MAX_KEPT) continue;
        files[rel] = e;
        kept++;
      }
      for (const [rel, e] of fresh) files[rel] = e;
      const doc: CacheFile = { v: 1, root: contextRoot, files };
      await writeFileAtomic(file, JSON.stringify(doc));
      dirty = false;
    },
  };
}
