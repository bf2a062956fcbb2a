// What the cache keys of this build were computed from, per context file: a copy out of the context checks that the
// bytes and metadata it wrote are exactly these, so a file edited during the build can never be cached under its old hash.
import type { Stats } from "node:fs";
import type { Hasher } from "../cache/hasher.js";

/** One context entry as a cache key saw it: `meta` is type, mode, owner; `content` the bytes' hash or a link's target. */
export interface DigestedEntry {
  meta: string;
  content: string;
}

export interface DigestLedger {
  /** Notes what a key was computed from; a path seen twice with different values is remembered as changed. */
  record(rel: string, entry: DigestedEntry, hasher: Hasher): void;
  /** What keys saw for `rel`: undefined when no key read it, "changed" when two keys saw different versions. */
  get(rel: string): DigestedEntry | "changed" | undefined;
  /** The hasher keys used; undefined until a key read the context (then copies are not checked: nothing to check against). */
  readonly hasher: Hasher | undefined;
}

export function createDigestLedger(): DigestLedger {
  const seen = new Map<string, DigestedEntry | "changed">();
  let hasher: Hasher | undefined;
  return {
    record(rel, entry, h) {
      hasher ??= h;
      const old = seen.get(rel);
      if (old === undefined) seen.set(rel, entry);
      else if (old !== "changed" && (old.meta !== entry.meta || old.content !== entry.content)) seen.set(rel, "changed");
    },
    get: (rel) => seen.get(rel),
    get hasher() {
      return hasher;
    },
  };
}

function typeOf(st: Stats): string {
  if (st.isFile()) return "f";
  if (st.isDirectory()) return "d";
  if (st.isSymbolicLink()) return "l";
  return "o";
}

/** The metadata of a context entry that goes into cache keys (and that a copy must reproduce). */
export function entryMeta(st: Stats): string {
  return `${typeOf(st)}:${(st.mode & 0o7777).toString(8)}:${st.uid}:${st.gid}`;
}
