// Cache keys: pure functions of a step's parent key and the named parts that can change its result. The parts are
// kept (as `explain`) so a miss can be explained by comparing them with the last build of the same step.
import type { Hasher } from "../util/hasher.js";

/** What went into a key, by part name; values are short strings (digests, expanded text). */
export type KeyParts = Record<string, string>;

export interface CacheKey {
  /** 32 hex digits. */
  digest: string;
  parts: KeyParts;
}

/** Bumped whenever what a layer contains for the same inputs changes (v2: BuildKit's mode and owner for a COPY destination dir; v3: hard links kept, uname/gname root; v4: an ADD'd tar's hard-link members set the shared inode's metadata; v5: the runtime's /dev, /proc, /sys mount points kept in a RUN layer, explicit whiteouts for a recreated directory, no entry for a directory whose times alone changed,  Go's walk order, whiteouts without owner names; v6: uids/gids 262144–2097151 in a PAX record instead of clamped), so old records never hit. */
export const CACHE_FORMAT = "tsbuild-cache-v6";

/** Parts are sorted by name so the key does not depend on the order they were gathered in. */
export function cacheKey(hasher: Hasher, parent: string | undefined, parts: KeyParts): CacheKey {
  const names = Object.keys(parts).sort();
  const text = [CACHE_FORMAT, parent ?? "", ...names.map((n) => `${n}\u0000${parts[n]}`)].join("\u0001");
  return { digest: hasher.key(text), parts };
}
