// Pure parsing of RUN --mount=... values (BuildKit syntax) into MountSpec, and of the CLI's --secret flag.
// No disk, no processes: what a mount means on the host is decided in run-mounts.ts.
import { posix, resolve as resolvePath } from "node:path";
import { DockerfileParseError, UsageError } from "../errors.js";
import type { SourceRange } from "../frontend/types.js";

export type MountType = "bind" | "cache" | "tmpfs" | "secret" | "ssh";
export type MountSharing = "shared" | "private" | "locked";

export interface MountSpec {
  type: MountType;
  /**
   * Where it appears in the container, normalised; relative targets are resolved against the RUN's workdir later.
   * Empty for a secret that is exposed as an env var alone (`env=` without `target=`), and for an ssh mount without
   * target= (BuildKit's /run/buildkit/ssh_agent.N, N counting the RUN's ssh mounts, is chosen in run-mounts).
   */
  target: string;
  /** bind: path in the context or `from` stage (default "/"); cache: ignored seed path. */
  source?: string;
  /** bind: stage name (or image reference, unsupported). */
  from?: string;
  /** bind defaults to read-only; cache to read-write. */
  readonly: boolean;
  /** cache: shared-cache identity (default: target); secret: secret id (default: basename of target); ssh: --ssh id (default "default"). */
  id?: string;
  sharing: MountSharing;
  uid?: number;
  gid?: number;
  mode?: number;
  /** secret, ssh: fail when the secret or ssh id was not provided. */
  required: boolean;
  /** secret: also (or only) expose the value as this environment variable. */
  env?: string;
  /** tmpfs: size limit in bytes (parsed; not yet enforced by the executors). */
  size?: number;
}

/** The identity of a cache mount: its id=, else its target (BuildKit's default), as the store names its directory. */
export function cacheMountId(spec: Pick<MountSpec, "id" | "target">): string {
  return spec.id ?? spec.target;
}

const KNOWN_KEYS = new Set([
  "type",
  "target",
  "dst",
  "destination",
  "source",
  "src",
  "from",
  "ro",
  "readonly",
  "rw",
  "readwrite",
  "id",
  "sharing",
  "uid",
  "gid",
  "mode",
  "required",
  "env",
  "size",
]);

function bad(raw: string, what: string, range?: SourceRange): DockerfileParseError {
  return new DockerfileParseError("BAD_MOUNT", `--mount=${raw}: ${what}`, range ? { range } : {});
}

function parseBool(raw: string, key: string, value: string | undefined, range?: SourceRange): boolean {
  if (value === undefined || value === "") return true;
  const v = value.toLowerCase();
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw bad(raw, `${key}=${value}: expected true or false`, range);
}

function parseId(raw: string, key: string, value: string, range?: SourceRange): number {
  if (!/^\d+$/.test(value) || Number(value) > 0xffffffff) throw bad(raw, `${key}=${value}: expected a numeric id`, range);
  return Number(value);
}

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

function parseSize(raw: string, value: string, range?: SourceRange): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value);
  const unit = m ? SIZE_UNITS[(m[2] as string).toLowerCase()] : undefined;
  if (!m || unit === undefined) throw bad(raw, `size=${value}: expected bytes, optionally with k, m or g`, range);
  return Math.floor(Number(m[1]) * unit);
}

function normaliseTarget(t: string): string {
  const n = posix.normalize(t);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

/** Parses one `--mount=` value, e.g. `type=cache,target=/root/.cache,sharing=locked`. */
export function parseMountSpec(raw: string, range?: SourceRange): MountSpec {
  const opts = new Map<string, string | undefined>();
  for (const part of raw.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : part.slice(eq + 1).trim();
    if (!KNOWN_KEYS.has(key)) throw bad(raw, `unknown option ${JSON.stringify(key)}`, range);
    opts.set(key, value);
  }
  const val = (key: string): string | undefined => {
    const v = opts.get(key);
    if (opts.has(key) && (v === undefined || v === "")) throw bad(raw, `${key} needs a value`, range);
    return v;
  };
  const first = (...keys: string[]): string | undefined => {
    let found: string | undefined;
    for (const k of keys) found = val(k) ?? found;
    return found;
  };

  const type = val("type") ?? "bind";
  if (type !== "bind" && type !== "cache" && type !== "tmpfs" && type !== "secret" && type !== "ssh")
    throw bad(raw, `unknown mount type ${JSON.stringify(type)} (expected bind, cache, tmpfs, secret or ssh)`, range);

  const spec: MountSpec = { type, target: "", readonly: type === "bind", sharing: "shared", required: false };
  const target = first("target", "dst", "destination");
  const source = first("source", "src");
  if (source !== undefined) spec.source = source;
  const from = val("from");
  if (from !== undefined) spec.from = from;
  const id = val("id");
  if (id !== undefined) spec.id = id;
  // Later flags win, as in BuildKit's CSV reader: `ro,rw` is read-write.
  for (const [k, v] of opts) {
    if (k === "ro" || k === "readonly") spec.readonly = parseBool(raw, k, v, range);
    if (k === "rw" || k === "readwrite") spec.readonly = !parseBool(raw, k, v, range);
  }
  const sharing = val("sharing");
  if (sharing !== undefined) {
    if (sharing !== "shared" && sharing !== "private" && sharing !== "locked") throw bad(raw, `sharing=${sharing}: expected shared, private or locked`, range);
    spec.sharing = sharing;
  }
  const uid = val("uid");
  if (uid !== undefined) spec.uid = parseId(raw, "uid", uid, range);
  const gid = val("gid");
  if (gid !== undefined) spec.gid = parseId(raw, "gid", gid, range);
  const mode = val("mode");
  if (mode !== undefined) {
    if (!/^0?[0-7]{1,4}$/.test(mode)) throw bad(raw, `mode=${mode}: expected an octal mode such as 0755`, range);
    spec.mode = parseInt(mode, 8);
  }
  if (opts.has("required")) spec.required = parseBool(raw, "required", opts.get("required"), range);
  const env = val("env");
  if (env !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(env)) throw bad(raw, `env=${env}: expected an environment variable name`, range);
    spec.env = env;
  }
  const size = val("size");
  if (size !== undefined) spec.size = parseSize(raw, size, range);

  if (type === "secret") {
    if (spec.id === undefined && target === undefined) throw bad(raw, "a secret mount needs id= or target=", range);
    spec.id ??= posix.basename(target as string);
    // With env= alone the secret is only an environment variable; otherwise it is a file.
    if (target !== undefined) spec.target = normaliseTarget(target);
    else if (spec.env === undefined) spec.target = `/run/secrets/${spec.id}`;
  } else if (type === "ssh") {
    if (source !== undefined) throw bad(raw, "an ssh mount takes no source", range);
    spec.id ??= "default";
    if (target !== undefined) spec.target = normaliseTarget(target);
  } else {
    if (target === undefined) throw bad(raw, "target= is required", range);
    spec.target = normaliseTarget(target);
  }
  if (spec.target === "/") throw bad(raw, "cannot mount over /", range);
  return spec;
}

export interface SecretSource {
  /** Host file holding the secret. */
  src?: string;
  /** Host environment variable holding the secret. */
  env?: string;
  /** The environment `env` is read from (the CLI's, which may differ from process.env); default process.env. */
  environment?: NodeJS.ProcessEnv;
}

/**
 * The CLI's `--secret id=x,src=path`, `id=x,env=VAR` or `id=x,type=file|env`. A bare `id=x` means the environment
 * variable x when it is set, and is an error otherwise. File paths are made absolute against the cwd.
 */
export function parseSecretFlag(value: string, env: NodeJS.ProcessEnv = process.env): [string, SecretSource] {
  const opts = new Map<string, string>();
  for (const part of value.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) throw new UsageError("BAD_FLAG_VALUE", `--secret: expected key=value, got ${JSON.stringify(part)} in ${JSON.stringify(value)}`);
    const key = part.slice(0, eq).trim().toLowerCase();
    if (!["id", "type", "src", "source", "env"].includes(key))
      throw new UsageError("BAD_FLAG_VALUE", `--secret: unknown option ${JSON.stringify(key)} (expected id, type, src or env)`);
    opts.set(key, part.slice(eq + 1));
  }
  const id = opts.get("id");
  if (!id) throw new UsageError("BAD_FLAG_VALUE", `--secret ${value}: id= is required`);
  const type = opts.get("type");
  if (type !== undefined && type !== "file" && type !== "env") throw new UsageError("BAD_FLAG_VALUE", `--secret ${value}: type must be file or env`);
  const src = opts.get("src") ?? opts.get("source");
  const envName = opts.get("env");
  if (src !== undefined && envName !== undefined) throw new UsageError("BAD_FLAG_VALUE", `--secret ${value}: give src= or env=, not both`);
  if (src !== undefined) {
    if (type === "env") return [id, { env: src, environment: env }];
    return [id, { src: resolvePath(src) }];
  }
  if (envName !== undefined) {
    if (type === "file") return [id, { src: resolvePath(envName) }];
    return [id, { env: envName, environment: env }];
  }
  if (type === "env") return [id, { env: id, environment: env }];
  if (type === "file") return [id, { src: resolvePath(id) }];
  if (env[id] !== undefined) return [id, { env: id, environment: env }];
  throw new UsageError("BAD_FLAG_VALUE", `--secret ${value}: no src= or env= given and $${id} is not set`);
}
