// Resolves one COPY/ADD source path (possibly with Go-glob wildcards per segment) inside a root directory:
// the build context or another stage's rootfs. Symlinks are resolved chroot-style, so nothing outside the root is reached.
import type { Stats } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import { compileGoPattern, hasMeta } from "../frontend/path-match.js";
import { resolveInRoot } from "../fs/rootfs-path.js";
import { errnoCode } from "../util/errno.js";

export interface SourceMatch {
  /** The matched path as written (wildcards filled in), `/`-separated, relative to the root; "." for the root. */
  path: string;
  /** The path after following symlinks, relative to the root; "." for the root. */
  resolved: string;
  /** Absolute path on disk of the resolved entry. */
  abs: string;
  /** lstat of the resolved entry: never a symlink. */
  stat: Stats;
}

export interface MatchSourcesOptions {
  /** Paths treated as absent (dockerignored). */
  excluded?: (rel: string) => boolean;
}

function joinRel(dir: string, name: string): string {
  return dir === "." ? name : `${dir}/${name}`;
}

function relOf(root: string, abs: string): string {
  const rel = path.relative(root, abs).split(path.sep).join("/");
  return rel === "" ? "." : rel;
}

/**
 * For a pattern, whether the literal directory its first wildcard segment is matched in exists (and is not
 * excluded). BuildKit (fsutil's copy) lets a pattern match nothing, but lstats that directory first: `COPY
 * nodir/*.txt /d/` fails while `COPY *.nomatch /d/` copies nothing. Returns that directory when it is missing.
 */
export async function missingGlobBase(root: string, rel: string, opts: MatchSourcesOptions = {}): Promise<string | undefined> {
  const segs = rel.split("/");
  const first = segs.findIndex(hasMeta);
  if (first <= 0) return undefined;
  const base = segs.slice(0, first).join("/");
  if (opts.excluded?.(base)) return base;
  try {
    await lstat(await resolveInRoot(path.resolve(root), base, { followLast: true }));
    return undefined;
  } catch (e) {
    const code = errnoCode(e);
    if (code === "ENOENT" || code === "ENOTDIR") return base;
    throw e;
  }
}

/**
 * `rel` is clean, relative, and never starts with `..`. Returns matches sorted by path; [] when nothing matches.
 * As BuildKit (FollowSymlinks), a source that is itself a symlink is followed — inside the root only.
 */
export async function matchSources(root: string, rel: string, opts: MatchSourcesOptions = {}): Promise<SourceMatch[]> {
  const hostRoot = path.resolve(root);
  const excluded = opts.excluded ?? (() => false);
  let candidates = ["."];
  if (rel !== "." && rel !== "") {
    for (const seg of rel.split("/")) {
      if (!hasMeta(seg)) {
        candidates = candidates.map((c) => joinRel(c, seg));
        continue;
      }
      const test = compileGoPattern(seg);
      const next: string[] = [];
      for (const c of candidates) {
        let names: string[];
        try {
          names = await readdir(await resolveInRoot(hostRoot, c));
        } catch (e) {
          const code = errnoCode(e);
          if (code === "ENOENT" || code === "ENOTDIR") continue;
          throw e;
        }
        names.sort();
        for (const n of names) {
          const p = joinRel(c, n);
          if (test(n) && !excluded(p)) next.push(p);
        }
      }
      candidates = next;
    }
  }
  const out: SourceMatch[] = [];
  for (const p of candidates) {
    const abs = await resolveInRoot(hostRoot, p, { followLast: true });
    let stat: Stats;
    try {
      stat = await lstat(abs);
    } catch (e) {
      const code = errnoCode(e);
      if (code === "ENOENT" || code === "ENOTDIR") continue;
      throw e;
    }
    const resolved = relOf(hostRoot, abs);
    if (excluded(p) || excluded(resolved)) continue;
    out.push({ path: p, resolved, abs, stat });
  }
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}
