// The build context as COPY/ADD see it: a directory minus its .dockerignore'd paths.
// Resolves COPY sources (cleaned, wildcards, symlinks kept inside the context) and walks directories.
import path from "node:path";
import { BuildError } from "../errors.js";
import { cleanPath, compileDockerignore, type DockerignoreMatcher } from "../frontend/dockerignore.js";
import { hasMeta } from "../frontend/path-match.js";
import type { SourceRange } from "../frontend/types.js";
import { eitherMatcher, relativeMatcher } from "./copy-selection.js";
import { matchSources, missingGlobBase, type SourceMatch } from "./match-sources.js";
import { walkTree, type WalkEntry } from "./walk.js";

export type ContextMatch = SourceMatch;
export type ContextEntry = WalkEntry;

export interface BuildContext {
  /** Absolute path of the context directory. */
  readonly root: string;
  /** True when `rel` (relative to the context root) is excluded by .dockerignore. */
  isExcluded(rel: string): boolean;
  /** The context entries a COPY/ADD source names; [] for a pattern that matches nothing; throws SOURCE_NOT_FOUND. */
  resolveSources(src: string, range?: SourceRange): Promise<ContextMatch[]>;
  /**
   * Everything below `relDir` (relative to the context root), minus ignored paths and what `filter` (asked with
   * paths relative to `relDir`: COPY --exclude/--parents) leaves out; `rel` is relative to the context root.
   */
  walk(relDir: string, signal?: AbortSignal, onExcluded?: (rel: string) => void, filter?: DockerignoreMatcher): AsyncIterable<ContextEntry>;
}

function where(range: SourceRange | undefined): string {
  return range ? ` (${range.file}:${range.start.line})` : "";
}

/**
 * Normalises a COPY source to a clean context-relative path ("." for the root). As BuildKit, `..` cannot climb above
 * the context root: `../a.txt` and `/../a.txt` name the context's `a.txt`.
 */
export function contextRelativeSource(src: string, range?: SourceRange): string {
  if (src === "") throw new BuildError("SOURCE_NOT_FOUND", `empty source path${where(range)}`, range ? { range } : {});
  const rel = cleanPath("/" + src).replace(/^\/+/, "");
  return rel === "" ? "." : rel;
}

export function openBuildContext(dir: string, ignorePatterns: string[]): BuildContext {
  const root = path.resolve(dir);
  const matcher = compileDockerignore(ignorePatterns);
  const isExcluded = (rel: string): boolean => rel !== "." && rel !== "" && matcher.matches(rel);

  return {
    root,
    isExcluded,

    async resolveSources(src: string, range?: SourceRange): Promise<ContextMatch[]> {
      const rel = contextRelativeSource(src, range);
      const matches = await matchSources(root, rel, { excluded: isExcluded });
      if (matches.length > 0) return matches;
      const opts = range ? { range } : {};
      if (hasMeta(rel)) {
        // BuildKit lets a pattern match nothing (the step then copies the other sources, or nothing at all), as long
        // as the directory it is matched in exists.
        const base = await missingGlobBase(root, rel, { excluded: isExcluded });
        if (base === undefined) return [];
        throw new BuildError(
          "SOURCE_NOT_FOUND",
          `${JSON.stringify(base)} (of the pattern ${JSON.stringify(src)}) not found in the build context${where(range)}`,
          {
            ...opts,
            hint: isExcluded(base) ? `${base} is excluded by .dockerignore` : "paths are relative to the build context directory",
          },
        );
      }
      const ignored = isExcluded(rel);
      throw new BuildError("SOURCE_NOT_FOUND", `${JSON.stringify(src)} not found in the build context${where(range)}`, {
        ...opts,
        hint: ignored ? `${rel} is excluded by .dockerignore` : "paths are relative to the build context directory",
      });
    },

    walk(relDir: string, signal?: AbortSignal, onExcluded?: (rel: string) => void, filter?: DockerignoreMatcher): AsyncIterable<ContextEntry> {
      // No .dockerignore and no filter: no matcher at all, rather than asking an empty one about every path.
      const ignore = filter ? eitherMatcher(matcher, relativeMatcher(relDir, filter)) : ignorePatterns.length > 0 ? matcher : undefined;
      return walkTree(root, relDir, { ...(ignore ? { ignore } : {}), ...(signal ? { signal } : {}), ...(onExcluded ? { onExcluded } : {}) });
    },
  };
}
