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

/**
 * One directory's entries as a single string: `name/fields/name/fields…` (a name never holds `/`), each `fields`
 * being `size mtimeMs ctimeMs ino hash`. v2 parsed 100,000 entries into 500,000 objects (arrays and boxed numbers)
 * that lived the whole build, ~0.4 s of JSON.parse and ~0.2 s of GC at that size; one string per directory parses
 * in milliseconds, lives outside the young generation, and is decoded only as the walk enters its directory.
 */
type Dirs = Record<string, string>;

interface CacheFile {
  v: 3;
  root: string;
  dirs: Dirs;
}

/** Where a context entry sits: its directory relative to the context ("" for the root) and its name. */
export interface EntryPlace {
  dir: string;
  name: string;
}

export interface FileHashCache {
  /** The cached hash when the file's stat is unchanged (no I/O), else undefined. `at` saves splitting `rel`. */
  lookup(rel: string, st: Stats, at?: EntryPlace): string | undefined;
  /** Content hash of the regular file `abs` whose lstat is `st`; `rel` names it in the cache. */
  hash(abs: string, rel: string, st: Stats, signal?: AbortSignal, at?: EntryPlace): Promise<string>;
  /**
   * hash() in one synchronous read for a file of at most 1 MiB (undefined for a larger one): a promise per small
   * file cost several times the read itself (a cold 5,000-file digest spent ~400 ms waiting).
   */
  hashSmallSync(abs: string, rel: string, st: Stats, at?: EntryPlace): string | undefined;
  /** Persist new entries (atomic); a no-op when nothing changed. */
  save(): Promise<void>;
  /** Files served from the stat cache / read and hashed, and bytes read, for benchmarks and --explain-cache. */
  readonly counters: { cached: number; hashed: number; bytes: number };
}

/** Timestamps this close to the hashing time may hide a later change with the same mtime (coarse kernel clock). */
const RACY_MS = 50;
const SMALL_FILE = 1 << 20;
/** Entries of directories not seen in a build are kept for other targets, up to this many. */
const MAX_KEPT = 200_000;

export function fileHashCachePath(storeRoot: string, hasher: Hasher, contextRoot: string): string {
  return storeLayout(storeRoot).contextCache(hasher.key(contextRoot));
}

/** A prototype-less record: a file or directory named `__proto__` is an ordinary key. */
const bare = <T>(): Record<string, T> => Object.create(null) as Record<string, T>;

/** name → fields of one directory's string (empty for none or a damaged value). */
function decodeDir(raw: unknown): Map<string, string> {
  const names = new Map<string, string>();
  if (typeof raw !== "string" || raw === "") return names;
  const parts = raw.split("/");
  for (let i = 0; i + 1 < parts.length; i += 2) names.set(parts[i] as string, parts[i + 1] as string);
  return names;
}

function encodeDir(names: Map<string, string>): string {
  return Array.from(names, ([name, fields]) => `${name}/${fields}`).join("/");
}

/** `fields` up to the hash: equal stats give equal strings (a number prints the same digits whenever it is equal). */
const statFields = (st: Stats): string => `${st.size} ${st.mtimeMs} ${st.ctimeMs} ${st.ino} `;

function placeOf(rel: string): EntryPlace {
  const slash = rel.lastIndexOf("/");
  return slash < 0 ? { dir: "", name: rel } : { dir: rel.slice(0, slash), name: rel.slice(slash + 1) };
}

export async function openFileHashCache(storeRoot: string, contextRoot: string, hasher: Hasher): Promise<FileHashCache> {
  const file = fileHashCachePath(storeRoot, hasher, contextRoot);
  let old: Dirs = bare();
  try {
    const parsed = JSON.parse(await readFile(file, "utf8")) as CacheFile;
    // A cache for another directory (hash collision) or another version (v2: one rebuild re-hashes) is ignored, never trusted.
    if (parsed.v === 3 && parsed.root === contextRoot && parsed.dirs && typeof parsed.dirs === "object") old = Object.assign(bare<string>(), parsed.dirs);
  } catch {
    /* absent or damaged (e.g. a killed write of an older version): start empty */
  }
  /** name → fields hashed by this build, per directory. */
  const fresh = new Map<string, Map<string, string>>();
  // Directories a lookup hit in `old`: their entries are kept first when the file is rewritten.
  const seenDirs = new Set<string>();
  // The directory of `old` decoded last: a walk asks about one directory's names in a row.
  let decoded: { dir: string; names: Map<string, string> } | undefined;
  let dirty = false;
  const counters = { cached: 0, hashed: 0, bytes: 0 };
  /** hashSmallSync's read buffer, one per cache: no allocation per file. */
  let scratch: Buffer | undefined;

  async function contentHash(abs: string, size: number, signal?: AbortSignal): Promise<string> {
    counters.hashed++;
    counters.bytes += size;
    if (size <= SMALL_FILE) return hasher.bytes(await readFile(abs, signal ? { signal } : {}));
    const h = hasher.stream();
    for await (const chunk of createReadStream(abs, { highWaterMark: SMALL_FILE, ...(signal ? { signal } : {}) })) h.update(chunk as Buffer);
    return h.digest();
  }

  function lookup(rel: string, st: Stats, at: EntryPlace = placeOf(rel)): string | undefined {
    let known = fresh.get(at.dir)?.get(at.name);
    if (known === undefined) {
      if (decoded?.dir !== at.dir) decoded = { dir: at.dir, names: decodeDir(old[at.dir]) };
      known = decoded.names.get(at.name);
      if (known !== undefined) seenDirs.add(at.dir);
    }
    if (known === undefined) return undefined;
    const prefix = statFields(st);
    if (!known.startsWith(prefix)) return undefined;
    counters.cached++;
    return known.slice(prefix.length);
  }

  /** Remembers a hash read at `startedAt`, unless the file changed too recently to trust its stat. */
  function remember(st: Stats, at: EntryPlace, startedAt: number, hash: string): string {
    if (Math.max(st.mtimeMs, st.ctimeMs) < startedAt - RACY_MS) {
      let names = fresh.get(at.dir);
      if (!names) fresh.set(at.dir, (names = new Map()));
      names.set(at.name, statFields(st) + hash);
      dirty = true;
    }
    return hash;
  }

  return {
    counters,
    lookup,
    async hash(abs, rel, st, signal, at = placeOf(rel)) {
      throwIfAborted(signal);
      const known = lookup(rel, st, at);
      if (known !== undefined) return known;
      const startedAt = Date.now();
      return remember(st, at, startedAt, await contentHash(abs, st.size, signal));
    },
    hashSmallSync(abs, rel, st, at = placeOf(rel)) {
      if (st.size > SMALL_FILE) return undefined;
      const known = lookup(rel, st, at);
      if (known !== undefined) return known;
      const startedAt = Date.now();
      scratch ??= Buffer.allocUnsafe(SMALL_FILE + 1);
      const fd = openSync(abs, "r");
      let n: number;
      try {
        n = readUpTo(fd, scratch, scratch.length);
      } finally {
        closeSync(fd);
      }
      // Grown past the limit since its lstat: hash() streams it.
      if (n > SMALL_FILE) return undefined;
      counters.hashed++;
      counters.bytes += n;
      return remember(st, at, startedAt, hasher.bytes(scratch.subarray(0, n)));
    },
    async save() {
      if (!dirty) return;
      const dirs: Dirs = bare();
      let kept = 0;
      // Directories this build read first, then others while they fit; fresh entries replace old ones.
      const order = [...seenDirs, ...Object.keys(old).filter((d) => !seenDirs.has(d))];
      for (const d of order) {
        const raw = old[d];
        if (typeof raw !== "string") continue;
        const n = raw.split("/").length / 2; // name and fields per entry
        if (!seenDirs.has(d) && !fresh.has(d) && kept + n > MAX_KEPT) continue;
        dirs[d] = raw;
        kept += n;
      }
      for (const [d, names] of fresh) {
        const merged = decodeDir(dirs[d]);
        for (const [name, fields] of names) merged.set(name, fields);
        dirs[d] = encodeDir(merged);
      }
      const doc: CacheFile = { v: 3, root: contextRoot, dirs };
      await writeFileAtomic(file, JSON.stringify(doc));
      dirty = false;
    },
  };
}
