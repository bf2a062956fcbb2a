// Image references with Docker's naming rules (distribution/reference): parsing, normalisation
// (`busybox` → `docker.io/library/busybox:latest`) and the short "familiar" display form (`busybox:latest`).
import { UsageError } from "../errors.js";

export interface ImageReference {
  /** Registry host, with port when given: "docker.io", "localhost:5000". */
  registry: string;
  /** Path inside the registry: "library/busybox", "user/img". */
  repository: string;
  tag?: string;
  digest?: `sha256:${string}`;
  /** Normalised full string: registry/repository[:tag][@digest]; "latest" is added only when there is no digest. */
  name: string;
  /** Short display form, as docker prints it: "busybox:latest", "user/img:1.0", "myreg:5000/a/b:t". */
  familiar: string;
}

const DEFAULT_REGISTRY = "docker.io";
const OFFICIAL_PREFIX = "library/";
const MAX_NAME = 255;

// distribution/reference grammar.
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const HEX64_RE = /^[a-f0-9]{64}$/;

function invalid(input: string, why: string): UsageError {
  return new UsageError("INVALID_REFERENCE", `invalid image reference ${JSON.stringify(input)}: ${why}`, {
    hint: "references look like name[:tag][@sha256:digest], e.g. busybox:1.36 or registry.example.com:5000/team/app:v1",
  });
}

/** Docker's rule for whether the first path component names a registry rather than a repository part. */
function isDomain(first: string): boolean {
  return first.includes(".") || first.includes(":") || first === "localhost" || first.toLowerCase() !== first;
}

/** Why `host` ("registry.example.com:5000", "[::1]:5000") is not a usable registry host, or undefined when it is. */
export function registryHostProblem(host: string): string | undefined {
  if (!DOMAIN_RE.test(host)) return `the registry ${JSON.stringify(host)} is not a valid host[:port]`;
  const port = /:([0-9]+)$/.exec(host)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return `the registry port ${port} is not between 1 and 65535`;
  try {
    // The URL parser is what the registry client uses: a host it rejects ("[1]", a 300-character label) is bad here.
    new URL(`https://${host}/`);
  } catch {
    return `the registry ${JSON.stringify(host)} is not a valid host[:port]`;
  }
  return undefined;
}

/** Throws UsageError INVALID_REGISTRY when `host` is not a usable registry host[:port]; `input` is what the user typed. */
export function checkRegistryHost(host: string, input = host): void {
  const bad = registryHostProblem(host);
  if (bad !== undefined)
    throw new UsageError("INVALID_REGISTRY", `invalid registry ${JSON.stringify(input)}: ${bad}`, {
      hint: "a registry is host[:port], e.g. registry.example.com:5000 or localhost:5000",
    });
}

export function parseReference(input: string): ImageReference {
  const s = input;
  if (s === "") throw invalid(s, "the reference is empty");
  if (/\s/.test(s)) throw invalid(s, "it contains whitespace");
  if (HEX64_RE.test(s)) throw invalid(s, "a 64-character hexadecimal string is an image ID, not a name");

  let rest = s;
  let digest: `sha256:${string}` | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const d = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(d)) throw invalid(s, `the digest ${JSON.stringify(d)} is not sha256: followed by 64 lower-case hex digits`);
    digest = d as `sha256:${string}`;
  }

  // A ':' after the last '/' separates the tag (a ':' before it is a registry port).
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.indexOf(":", lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      throw invalid(s, `the tag ${JSON.stringify(tag)} is not valid (letters, digits, '_', '.', '-'; at most 128, not starting with '.' or '-')`);
    }
  }
  if (rest === "") throw invalid(s, "the repository name is empty");

  let registry = DEFAULT_REGISTRY;
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0 && isDomain(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    path = rest.slice(slash + 1);
    const bad = registryHostProblem(registry);
    if (bad !== undefined) throw invalid(s, bad);
    if (registry === "index.docker.io") registry = DEFAULT_REGISTRY;
  }
  if (path === "") throw invalid(s, "the repository name is empty");
  for (const comp of path.split("/")) {
    if (comp === "") throw invalid(s, "the repository name has an empty path component");
    // docker's own words, so scripts and searches match; then the fix.
    if (comp.toLowerCase() !== comp)
      throw invalid(s, `invalid reference format: repository name must be lowercase (write ${JSON.stringify(comp.toLowerCase())}, all lower-case)`);
    if (!PATH_COMPONENT_RE.test(comp)) {
      throw invalid(
        s,
        `the repository path component ${JSON.stringify(comp)} is not valid (lower-case letters and digits, separated by '.', '_', '__' or '-')`,
      );
    }
  }
  if (registry === DEFAULT_REGISTRY && !path.includes("/")) path = OFFICIAL_PREFIX + path;

  const repoFull = `${registry}/${path}`;
  if (repoFull.length > MAX_NAME) throw invalid(s, `the repository name is longer than ${MAX_NAME} characters`);
  if (tag === undefined && digest === undefined) tag = "latest";

  const suffix = `${tag !== undefined ? `:${tag}` : ""}${digest !== undefined ? `@${digest}` : ""}`;
  let short = repoFull;
  if (registry === DEFAULT_REGISTRY) {
    short = path.startsWith(OFFICIAL_PREFIX) && path.indexOf("/", OFFICIAL_PREFIX.length) < 0 ? path.slice(OFFICIAL_PREFIX.length) : path;
  }
  const ref: ImageReference = { registry, repository: path, name: repoFull + suffix, familiar: short + suffix };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `busybox` → `docker.io/library/busybox:latest`. Throws UsageError INVALID_REFERENCE. */
export function normalizeName(s: string): string {
  return parseReference(s).name;
}

/** `docker.io/library/busybox:latest` → `busybox:latest`. Throws UsageError INVALID_REFERENCE. */
export function familiarName(s: string): string {
  return parseReference(s).familiar;
}
