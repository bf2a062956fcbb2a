// What `tsbuild images` lists, as `docker images` does: one entry per image name, docker's --filter keys and
// reference matching (Go path.Match on the familiar name), and docker's row fields for --format. Pure: the
// command reads the store and hands the entries here.
import { UsageError } from "../errors.js";
import { parseReference } from "../image/reference.js";
import { suggest } from "../util/suggest.js";
import { humanSize, timeAgo } from "./format.js";

export interface ImageEntry {
  /** Normalised name: docker.io/library/busybox:local. */
  name: string;
  /** Config digest: the image id. */
  id: string;
  /** The local manifest's digest. */
  manifestDigest: string;
  created?: string;
  size: number;
  labels: Readonly<Record<string, string>>;
  /** A multi-platform image (an index): its platforms' images. */
  platforms?: readonly { platform: string; id: string; created?: string; size: number }[];
}

export interface ImageFilters {
  dangling?: boolean;
  /** Any one must match (docker ORs reference filters). */
  references: string[];
  /** Every one must match: [key] or [key, value]. */
  labels: [string, string?][];
  before?: string;
  since?: string;
}

export const FILTER_KEYS = ["dangling", "reference", "label", "before", "since"] as const;

/** `--filter` values (key=value) → filters; a repository argument is one more reference filter, as in docker. */
export function parseImageFilters(values: readonly string[], repository?: string): ImageFilters {
  const out: ImageFilters = { references: repository === undefined ? [] : [repository], labels: [] };
  for (const f of values) {
    const eq = f.indexOf("=");
    const key = (eq < 0 ? f : f.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : f.slice(eq + 1);
    if (!(FILTER_KEYS as readonly string[]).includes(key)) {
      const near = suggest(key, FILTER_KEYS);
      throw new UsageError(
        "BAD_FLAG_VALUE",
        `--filter ${JSON.stringify(f)}: unknown filter ${JSON.stringify(key)} (the filters are ${FILTER_KEYS.join(", ")})`,
        {
          hint: near ? `did you mean ${near}=…?` : "e.g. --filter reference='busybox:*' or --filter label=org.opencontainers.image.version",
        },
      );
    }
    if (value === undefined || value === "") throw new UsageError("BAD_FLAG_VALUE", `--filter ${JSON.stringify(f)}: ${key} needs a value (${key}=…)`);
    if (key === "dangling") {
      const v = value.toLowerCase();
      if (v !== "true" && v !== "false" && v !== "1" && v !== "0")
        throw new UsageError("BAD_FLAG_VALUE", `--filter dangling=${value}: dangling takes true or false`);
      out.dangling = v === "true" || v === "1";
    } else if (key === "reference") {
      globToRegExp(value); // a malformed pattern fails here, before the store is read
      out.references.push(value);
    } else if (key === "label") {
      const e = value.indexOf("=");
      out.labels.push(e < 0 ? [value] : [value.slice(0, e), value.slice(e + 1)]);
    } else if (key === "before") out.before = value;
    else out.since = value;
  }
  return out;
}

/** Go's path.Match pattern as a RegExp: `*` and `?` never match '/', `[a-z]`/`[^a]` classes, `\` escapes. */
export function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\") {
      const next = pattern[++i];
      if (next === undefined) throw badPattern(pattern, "it ends with a lone \\");
      re += escapeRe(next);
    } else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) throw badPattern(pattern, "a [ has no closing ]");
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith("^");
      if (negate) body = body.slice(1);
      if (body === "") throw badPattern(pattern, "an empty character class []");
      re += `[${negate ? "^/" : ""}${body.replace(/[\]\\^]/g, (m) => "\\" + m)}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`);
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
const badPattern = (pattern: string, why: string) =>
  new UsageError("BAD_PATTERN", `the reference pattern ${JSON.stringify(pattern)} is malformed: ${why}`, {
    hint: "patterns use * and ? (never matching /), e.g. busybox, 'busybox:*', 'team/*:1.*'",
  });

/** docker's reference.FamiliarMatch: the pattern against `busybox:local`, else against `busybox`. */
export function familiarMatch(pattern: string, name: string): boolean {
  const re = globToRegExp(pattern);
  const ref = parseReference(name);
  const bare = ref.familiar.replace(/@.*$/, "").replace(/:[^:/]*$/, "");
  return re.test(ref.familiar) || re.test(bare);
}

function createdMs(e: ImageEntry): number {
  const t = e.created ? Date.parse(e.created) : NaN;
  return Number.isNaN(t) ? 0 : t;
}

/**
 * The entries the filters keep. `before`/`since` are images already resolved by the caller (their entries). tsbuild
 * keeps no untagged images (an image whose last name is removed is only blobs, which prune removes), so
 * dangling=true keeps nothing.
 */
export function filterImages(entries: readonly ImageEntry[], f: ImageFilters, before?: ImageEntry, since?: ImageEntry): ImageEntry[] {
  return entries.filter((e) => {
    if (f.dangling === true) return false;
    if (f.references.length > 0 && !f.references.some((p) => familiarMatch(p, e.name))) return false;
    for (const [k, v] of f.labels) {
      if (!(k in e.labels)) return false;
      if (v !== undefined && e.labels[k] !== v) return false;
    }
    if (before && !(createdMs(e) < createdMs(before))) return false;
    if (since && !(createdMs(e) > createdMs(since))) return false;
    return true;
  });
}

/** docker's order: newest first, then by name. */
export function sortImages(entries: readonly ImageEntry[]): ImageEntry[] {
  return [...entries].sort((a, b) => createdMs(b) - createdMs(a) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Go's time.Time String() in UTC, as docker prints CreatedAt: "2024-01-02 03:04:05 +0000 UTC". */
export function goTime(iso: string | undefined): string {
  const t = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(t)) return "N/A";
  return (
    new Date(t)
      .toISOString()
      .replace("T", " ")
      .replace(/\.\d+Z$|Z$/, "") + " +0000 UTC"
  );
}

/** RFC 3339 to the second, as docker history prints CreatedAt: "2024-01-02T03:04:05Z". */
export function rfc3339(iso: string | undefined): string {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? "N/A" : new Date(t).toISOString().replace(/\.\d+Z$/, "Z");
}

const shortId = (d: string) => d.replace(/^sha256:/, "").slice(0, 12);

/** docker's image row (`{{json .}}` of `docker images`): the fields in docker's (alphabetical) order, all strings. */
export interface ImageRow {
  Containers: string;
  CreatedAt: string;
  CreatedSince: string;
  Digest: string;
  ID: string;
  /** Only for a multi-platform image: its platforms, comma-separated (not a docker field). */
  Platforms?: string;
  Repository: string;
  SharedSize: string;
  Size: string;
  Tag: string;
  UniqueSize: string;
  VirtualSize: string;
}

export const IMAGE_ROW_HEADER: ImageRow = {
  Containers: "CONTAINERS",
  CreatedAt: "CREATED AT",
  CreatedSince: "CREATED",
  Digest: "DIGEST",
  ID: "IMAGE ID",
  Repository: "REPOSITORY",
  SharedSize: "SHARED SIZE",
  Size: "SIZE",
  Tag: "TAG",
  UniqueSize: "UNIQUE SIZE",
  VirtualSize: "VIRTUAL SIZE",
};

/**
 * One row. Digest is the name's digest when it has one, else the local manifest's (tsbuild keeps layers
 * uncompressed, so for a pulled image this is not the registry's digest). Containers and the shared/unique sizes
 * are N/A: tsbuild has no containers and does not split sizes.
 */
export function imageRow(e: ImageEntry, opts: { noTrunc?: boolean; now?: number } = {}): ImageRow {
  const ref = parseReference(e.name);
  const fam = ref.familiar.replace(/@.*$/, "");
  const repo = ref.tag !== undefined ? fam.slice(0, fam.length - ref.tag.length - 1) : fam;
  const size = humanSize(e.size);
  return {
    Containers: "N/A",
    CreatedAt: goTime(e.created),
    CreatedSince: timeAgo(e.created, opts.now),
    Digest: ref.digest ?? e.manifestDigest,
    ID: opts.noTrunc ? e.id : shortId(e.id),
    ...(e.platforms ? { Platforms: e.platforms.map((p) => p.platform).join(",") } : {}),
    Repository: repo,
    SharedSize: "N/A",
    Size: size,
    Tag: ref.tag ?? "<none>",
    UniqueSize: "N/A",
    VirtualSize: size,
  };
}
