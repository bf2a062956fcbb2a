// Directory walker for build contexts and stage rootfs trees: never follows symlinks, honours a
// .dockerignore matcher (skipping excluded directories unless an exception may re-include something).
import type { Stats } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import pLimit from "p-limit";
import { throwIfAborted } from "../errors.js";
import type { DockerignoreMatcher } from "../frontend/dockerignore.js";

export interface WalkEntry {
  /** `/`-separated path relative to the walk's root (not to the directory walked). */
  rel: string;
  /** Absolute path on disk. */
  abs: string;
  /** lstat of the entry (symlinks are reported as symlinks). */
  stat: Stats;
}

export interface WalkOptions {
  ignore?: DockerignoreMatcher;
  signal?: AbortSignal;
  /** Parallel lstat calls per walk (default 64). */
  concurrency?: number;
}

type Limit = ReturnType<typeof pLimit>;

/** Byte-wise name order, so walks (and the layers built from them) are deterministic. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function* walkDir(root: string, relDir: string, opts: WalkOptions, limit: Limit): AsyncGenerator<WalkEntry> {
  throwIfAborted(opts.signal);
  const absDir = relDir === "" ? root : path.join(root, relDir);
  const dirents = await readdir(absDir, { withFileTypes: true });
  dirents.sort((a, b) => compareNames(a.name, b.name));
  const kept: { rel: string; abs: string; excluded: boolean }[] = [];
  for (const d of dirents) {
    const rel = relDir === "" ? d.name : `${relDir}/${d.name}`;
    const excluded = opts.ignore?.matches(rel) ?? false;
    // An excluded directory is still entered when an exception may re-include something below it.
    if (excluded && !(d.isDirectory() && opts.ignore?.mayReinclude(rel))) continue;
    kept.push({ rel, abs: path.join(absDir, d.name), excluded });
  }
  const stats = await Promise.all(kept.map((k) => limit(() => lstat(k.abs))));
  for (let i = 0; i < kept.length; i++) {
    const k = kept[i] as (typeof kept)[number];
    const stat = stats[i] as Stats;
    const entry: WalkEntry = { rel: k.rel, abs: k.abs, stat };
    if (!stat.isDirectory()) {
      if (!k.excluded) yield entry;
      continue;
    }
    if (!k.excluded) {
      yield entry;
      yield* walkDir(root, k.rel, opts, limit);
      continue;
    }
    // Excluded but maybe re-included below: the directory appears only if something inside survives (rare, so buffer).
    const inner: WalkEntry[] = [];
    for await (const e of walkDir(root, k.rel, opts, limit)) inner.push(e);
    if (inner.length > 0) {
      yield entry;
      yield* inner;
    }
  }
}

/**
 * Yields every entry below `relDir` (relative to `root`, "" or "." for the root itself), depth-first,
 * parents before children, names in byte order. `relDir` itself is not yielded.
 */
export function walkTree(root: string, relDir: string, opts: WalkOptions = {}): AsyncIterable<WalkEntry> {
  const limit = pLimit(opts.concurrency ?? 64);
  const start = relDir === "." ? "" : relDir.replace(/^\/+|\/+$/g, "");
  return walkDir(path.resolve(root), start, opts, limit);
}
