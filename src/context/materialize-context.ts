// Turns a CONTEXT argument that is not a local directory (`-`, a git URL, an http(s) URL) into a temporary directory
// under the store's tmp area, plus where the Dockerfile is; `release()` removes it. The Dockerfile of such a context
// is found inside it (`-f NAME` relative to the context root, never outside it); an absolute `-f` is a local file.
import { lstat, mkdir, realpath } from "node:fs/promises";
import { isAbsolute, join, posix, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import { BuildError, UsageError } from "../errors.js";
import type { ContextSpec } from "./context-spec.js";
import { fetchGit } from "../sources/git.js";
import { httpGet } from "../sources/http.js";
import { unpackContext, type UnpackedContext } from "./unpack-context.js";
import { sha256Tap } from "../util/sha256-tap.js";

/** Where a context came from, for the metadata file (BuildKit's build sources: type, ref, pin). */
export type ContextOrigin =
  | { type: "stdin"; format: "tar" | "dockerfile" }
  | { type: "git"; url: string; ref: string; subdir: string; commit: string }
  | { type: "http"; url: string; format: "tar" | "dockerfile"; digest: `sha256:${string}` };

export interface MaterializedContext {
  contextDir: string;
  /**
   * The Dockerfile: a file (inside the context unless -f named an absolute path) or its text (a bare Dockerfile);
   * undefined with `-f -`, whose text the caller reads from standard input.
   */
  dockerfile: { path: string; display: string } | { text: string; display: string } | undefined;
  origin: ContextOrigin;
  /** Remove the temporary directory; safe to call twice. */
  release(): Promise<void>;
}

export interface MaterializeOptions {
  /** A private scratch directory (the Engine's scratch()); the context is made inside it. */
  scratch(prefix: string): Promise<{ path: string; release(): Promise<void> }>;
  /** `-f`: undefined for CONTEXT/Dockerfile; "-" means `dockerfileFromStdin` was read by the caller. */
  dockerfileFlag?: string;
  /** Standard input, for `-` contexts. */
  stdin?: Readable;
  /** True when stdin is a terminal: `build -` is then an error instead of a wait for typed input. */
  stdinIsTTY?: boolean;
  /** The environment git runs in. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Progress lines: the commit a git ref resolved to, device nodes left out of a tar. */
  onInfo?(message: string): void;
  onWarning?(message: string): void;
}

/** Fetch or unpack `spec` (any kind but "dir") into a temporary directory. */
export async function materializeContext(spec: Exclude<ContextSpec, { kind: "dir" }>, opts: MaterializeOptions): Promise<MaterializedContext> {
  const flag = opts.dockerfileFlag;
  if (spec.kind === "stdin") {
    if (flag === "-")
      throw new UsageError("BAD_ARGS", "standard input cannot be both the build context (`-`) and the Dockerfile (`-f -`)", {
        hint: "pipe a tar holding the Dockerfile into `tsbuild build -`, or give a context directory with `-f -`",
      });
    if (!opts.stdin || opts.stdinIsTTY)
      throw new UsageError("STDIN_IS_TERMINAL", "`tsbuild build -` reads the build context from standard input, but it is a terminal", {
        hint: "pipe a tar or a Dockerfile into it, e.g. `tar -C app -c . | tsbuild build -t app -` or `tsbuild build -t app - < Dockerfile`",
      });
  }
  const scratch = await opts.scratch("context");
  try {
    const dir = join(scratch.path, "ctx");
    await mkdir(dir);
    const warn = (m: string) => opts.onWarning?.(m);
    if (spec.kind === "stdin") {
      const unpacked = await unpackContext(opts.stdin as Readable, dir, {
        source: "standard input",
        onWarning: warn,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      if (unpacked.kind === "dockerfile") {
        if (flag !== undefined && flag !== "Dockerfile") warn(`-f ${flag} is ignored: standard input holds a Dockerfile, not a tar (as docker build does)`);
        return done(dir, { text: unpacked.text, display: "<stdin>" }, { type: "stdin", format: "dockerfile" });
      }
      return done(dir, await dockerfileIn(dir, flag, "<stdin>"), { type: "stdin", format: "tar" });
    }
    if (spec.kind === "http") {
      const got = await fetchHttpContext(spec.url, dir, { onWarning: warn, ...(opts.signal ? { signal: opts.signal } : {}) });
      const origin: ContextOrigin = { type: "http", url: spec.url.href, format: got.unpacked.kind, digest: got.digest };
      opts.onInfo?.(`build context ${spec.url.href}: ${got.unpacked.kind === "tar" ? "a tar" : "a Dockerfile"} (${got.digest})`);
      if (got.unpacked.kind === "dockerfile") {
        if (flag !== undefined && flag !== "-" && !isAbsolute(flag))
          warn(`-f ${flag} is ignored: ${spec.url.href} is a Dockerfile, not a tar (as docker build does)`);
        const own = { text: got.unpacked.text, display: `<${spec.url.href}>` };
        return done(dir, flag === "-" ? undefined : flag !== undefined && isAbsolute(flag) ? local(flag) : own, origin);
      }
      return done(dir, await dockerfileIn(dir, flag, `<${spec.url.href}>`), origin);
    }
    const checkout = await fetchGit(spec, dir, { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.env ? { env: opts.env } : {}) });
    opts.onInfo?.(`git context ${spec.spec}: commit ${checkout.commit}`);
    if (checkout.hasSubmodules) warn(`git context ${spec.spec}: the repository has submodules, which tsbuild does not fetch; their directories are empty`);
    const origin: ContextOrigin = { type: "git", url: spec.url, ref: spec.ref, subdir: spec.subdir, commit: checkout.commit };
    return {
      contextDir: checkout.contextDir,
      dockerfile: await dockerfileIn(checkout.contextDir, flag, `<${spec.spec}>`),
      origin,
      release: once(scratch.release),
    };
  } catch (e) {
    await scratch.release().catch(() => undefined);
    throw e;
  }

  function done(contextDir: string, dockerfile: MaterializedContext["dockerfile"], origin: ContextOrigin): MaterializedContext {
    return { contextDir, dockerfile, origin, release: once(scratch.release) };
  }
}

/** Download `url` and unpack it into the empty directory `dest`; `digest` is the sha256 of the bytes as served. */
async function fetchHttpContext(
  url: URL,
  dest: string,
  opts: { signal?: AbortSignal; onWarning(message: string): void },
): Promise<{ unpacked: UnpackedContext; digest: `sha256:${string}` }> {
  const res = await httpGet(url, { purpose: "context", ...(opts.signal ? { signal: opts.signal } : {}) });
  const tap = sha256Tap();
  res.body.once("error", (e) => tap.destroy(e));
  res.body.pipe(tap);
  try {
    const unpacked = await unpackContext(tap, dest, {
      source: res.url.href,
      onWarning: opts.onWarning,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { unpacked, digest: tap.digest() };
  } finally {
    res.body.destroy();
  }
}

function once(f: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= f());
}

function local(path: string): { path: string; display: string } {
  return { path, display: path };
}

/**
 * The Dockerfile named by `-f` inside a fetched context (default `Dockerfile`): relative to the context root and
 * never out of it, also not through a symlink (its text would otherwise be read from the host). `-f -` is left to
 * the caller (text from stdin); an absolute path is a local file, as buildx treats it.
 */
async function dockerfileIn(contextDir: string, flag: string | undefined, where: string): Promise<MaterializedContext["dockerfile"]> {
  if (flag === "-") return undefined;
  if (flag !== undefined && isAbsolute(flag)) return local(flag);
  const name = posix.normalize(flag ?? "Dockerfile");
  const display = `${where}/${name}`;
  if (name === ".." || name.startsWith("../"))
    throw new BuildError("SOURCE_OUTSIDE_CONTEXT", `-f ${flag}: the Dockerfile must be inside the build context ${where}`, {
      hint: "name it relative to the context's root, e.g. -f docker/Dockerfile",
    });
  const path = join(contextDir, name);
  const root = await realpath(contextDir);
  const real = await realpath(path).catch(() => undefined);
  if (real === undefined || !(await lstat(real)).isFile())
    throw new BuildError("DOCKERFILE_NOT_FOUND", `cannot find the Dockerfile ${name} in the build context ${where}`, {
      hint: "use -f PATH to name the Dockerfile relative to the context's root",
    });
  if (relative(root, real).startsWith(".." + sep) || relative(root, real) === "..")
    throw new BuildError("SOURCE_OUTSIDE_CONTEXT", `the Dockerfile ${name} in the build context ${where} is a symlink that leads out of it`);
  return { path: real, display };
}
