// What one step's cache key was computed from, per context entry: the copy that executes the step checks that it
// wrote exactly these entries, bytes and metadata, so a file edited during the build is never cached under its old hash.
import type { Stats } from "node:fs";
import type { Hasher } from "../util/hasher.js";

/** One context entry as a cache key saw it: `meta` is type, mode, owner; `content` the bytes' hash or a link's target. */
export interface DigestedEntry {
  meta: string;
  content: string;
}

export interface DigestLedger {
  /** The hasher of the key's content hashes. */
  readonly hasher: Hasher;
  /** Notes what the key was computed from; a path seen twice with different values is remembered as changed. */
  record(rel: string, meta: string, content: string): void;
  /** What the key saw for `rel`: undefined when it did not read it, "changed" when it saw two versions. Marks `rel` copied. */
  take(rel: string): DigestedEntry | "changed" | undefined;
  /** Entries the key read that no take() asked for: gone before they could be copied. */
  untaken(): string[];
}

export function createDigestLedger(hasher: Hasher): DigestLedger {
  // Recorded flat (rel, meta, content, ...) and indexed at the first question: a step that hits the cache (every step
  // of a no-op) asks none, and a flat list is no object per entry for the collector.
  const recorded: string[] = [];
  let index: Map<string, DigestedEntry | "changed"> | undefined;
  const seen = (): Map<string, DigestedEntry | "changed"> => {
    if (index) return index;
    index = new Map();
    for (let i = 0; i < recorded.length; i += 3) note(index, recorded[i] as string, { meta: recorded[i + 1] as string, content: recorded[i + 2] as string });
    recorded.length = 0;
    return index;
  };
  const taken = new Set<string>();
  return {
    hasher,
    record(rel, meta, content) {
      if (index) note(index, rel, { meta, content });
      else recorded.push(rel, meta, content);
    },
    take(rel) {
      taken.add(rel);
      return seen().get(rel);
    },
    untaken: () => [...seen().keys()].filter((rel) => !taken.has(rel)),
  };
}

function note(seen: Map<string, DigestedEntry | "changed">, rel: string, entry: DigestedEntry): void {
  const old = seen.get(rel);
  if (old === undefined) seen.set(rel, entry);
  else if (old !== "changed" && (old.meta !== entry.meta || old.content !== entry.content)) seen.set(rel, "changed");
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
