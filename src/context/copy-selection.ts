// Which entries below a COPY/ADD source are copied: --exclude patterns (.dockerignore syntax, relative to each matched
// source, as fsutil's ExcludePatterns) and --parents' include pattern below its `/./` pivot (fsutil's IncludePatterns).
// Both are expressed as DockerignoreMatchers, so the walker that keys a step is the walker that copies it.
import { BuildError } from "../errors.js";
import { cleanPath, compileDockerignore, type DockerignoreMatcher } from "../frontend/dockerignore.js";
import { compileGoPattern, hasMeta } from "../frontend/path-match.js";
import type { SourceRange } from "../frontend/types.js";

/** The COPY/ADD flags that select entries (absent: everything below each source is copied). */
export interface CopySelection {
  exclude?: readonly string[];
  parents?: boolean;
}

/** One source as it is resolved and walked: the path to resolve, and what below it is kept. */
export interface SelectedSource {
  /** The path to resolve (for --parents: the part before the pivot, or the root). */
  source: string;
  /** Applied to paths relative to each matched source; undefined keeps everything. */
  filter?: DockerignoreMatcher;
  /** --parents without wildcards: this path (relative to the source) must have been copied. */
  required?: string;
}

/** Splits a --parents source at its first `/./` (BuildKit's strings.Cut): without one the whole path is kept under the root. */
export function splitParents(src: string): { base: string; pattern: string } {
  const cut = src.indexOf("/./");
  const base = cut < 0 ? "/" : src.slice(0, cut) || "/";
  const rest = cut < 0 ? src : src.slice(cut + 3);
  const pattern = cleanPath("/" + rest).replace(/^\/+/, "");
  return { base, pattern: pattern === "." ? "" : pattern };
}

/**
 * fsutil's include pattern: a path is kept when its first segments match the whole pattern (and then everything
 * below it is); a directory whose segments match the pattern's first ones is entered but appears only if something
 * inside is kept (the walker's "excluded but may re-include" case).
 */
export function includeMatcher(pattern: string): DockerignoreMatcher {
  const segs = pattern.split("/").map((s) => compileGoPattern(s));
  const prefixMatches = (p: string): { full: boolean; partial: boolean } => {
    const parts = p.split("/");
    const n = Math.min(parts.length, segs.length);
    for (let i = 0; i < n; i++) if (!(segs[i] as (s: string) => boolean)(parts[i] as string)) return { full: false, partial: false };
    return parts.length >= segs.length ? { full: true, partial: false } : { full: false, partial: true };
  };
  return {
    matches: (p) => !prefixMatches(p).full,
    mayReinclude: (p) => prefixMatches(p).partial,
  };
}

/** Excluded when either excludes it; a directory is skipped whole when one excludes it for good. */
export function eitherMatcher(a: DockerignoreMatcher, b: DockerignoreMatcher): DockerignoreMatcher {
  return {
    matches: (p) => a.matches(p) || b.matches(p),
    mayReinclude: (p) => (!a.matches(p) || a.mayReinclude(p)) && (!b.matches(p) || b.mayReinclude(p)),
  };
}

/** `m` (for paths relative to `base`) asked with paths relative to the walk's root. */
export function relativeMatcher(base: string, m: DockerignoreMatcher): DockerignoreMatcher {
  if (base === "" || base === ".") return m;
  const strip = (p: string) => (p.startsWith(base + "/") ? p.slice(base.length + 1) : p);
  return { matches: (p) => m.matches(strip(p)), mayReinclude: (p) => m.mayReinclude(strip(p)) };
}

/** How source `src` is resolved and filtered under `sel`. */
export function selectSource(src: string, sel: CopySelection = {}): SelectedSource {
  const exclude = sel.exclude?.length ? compileDockerignore([...sel.exclude]) : undefined;
  if (!sel.parents) return { source: src, ...(exclude ? { filter: exclude } : {}) };
  const { base, pattern } = splitParents(src);
  const include = pattern ? includeMatcher(pattern) : undefined;
  const filter = include && exclude ? eitherMatcher(include, exclude) : (include ?? exclude);
  // BuildKit's RequiredPaths: a literal --parents source must exist (a pattern may match nothing).
  const required = pattern && !hasMeta(base) && !hasMeta(pattern) ? pattern : undefined;
  return { source: base, ...(filter ? { filter } : {}), ...(required ? { required } : {}) };
}

/**
 * Yields `entries`, failing with SOURCE_NOT_FOUND at the end when `required` is set and none came. An iterator by
 * hand, not an async generator: a context walk passes 100,000 entries through it, each an extra promise otherwise.
 */
export function requireSome<T>(entries: AsyncIterable<T>, src: string, required: string | undefined, where: string, range?: SourceRange): AsyncIterable<T> {
  if (required === undefined) return entries;
  return {
    [Symbol.asyncIterator]() {
      const it = entries[Symbol.asyncIterator]();
      let any = false;
      return {
        async next() {
          const r = await it.next();
          if (!r.done) any = true;
          else if (!any)
            throw new BuildError("SOURCE_NOT_FOUND", `COPY --parents: ${JSON.stringify(src)} not found in ${where}`, {
              ...(range ? { range } : {}),
              hint: "the path after the /./ pivot (or the whole path without one) must exist; check it and your .dockerignore",
            });
          return r;
        },
        return: async (value?: unknown) => (await it.return?.(value)) ?? { done: true as const, value: undefined as T },
      } as AsyncIterator<T>;
    },
  };
}
