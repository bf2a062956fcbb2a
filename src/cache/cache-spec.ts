// Where a build imports caches from and exports them to (BuildKit's --cache-from / --cache-to, already parsed):
// the library opens and writes them; the CLI only turns flag text into these.
import type { CacheExportMode } from "./cache-export.js";

/** An imported cache: an OCI layout directory (`tag` names its index.json entry, default "cache") or a registry reference. */
export type CacheFromSpec = { type: "local"; src: string; tag?: string } | { type: "registry"; ref: string };
/**
 * An exported cache; `mode` min (default) exports the target's chain, max every stage built. `cacheMounts` also
 * carries the contents of the RUN --mount=type=cache directories those stages declare (cache-mounts=true).
 */
export type CacheToSpec =
  | { type: "local"; dest: string; tag?: string; mode?: CacheExportMode; cacheMounts?: boolean }
  | { type: "registry"; ref: string; mode?: CacheExportMode; cacheMounts?: boolean };
