// Turns parsed RUN --mount specs into the executor's extra mounts (cache dirs, context/stage binds, tmpfs, secrets)
// plus secret env vars, and hands back one release() that drops locks and scratch copies.
// Nothing mounted here is ever part of a layer: runStep drops the empty mount-point stubs the runtime leaves.
import { execFile } from "node:child_process";
import { chmod, chown, lstat, mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, posix, relative, sep } from "node:path";
import { contextView, type ViewableContext } from "../context/context-view.js";
import { BuildError, throwIfAborted } from "../errors.js";
import type { BindMount } from "../executor/types.js";
import type { SourceRange } from "../frontend/types.js";
import { resolveInRoot } from "../fs/rootfs-path.js";
import { ensureCacheMountsDir, lockCacheMount } from "../store/cache-mount-dirs.js";
import { storeLayout } from "../store/layout.js";
import { cacheMountId, type MountSpec, type SecretSource } from "./mount-spec.js";
import { sshNotFound } from "./ssh-agents.js";

export interface RunMountContext {
  /** Store root; cache mounts live in `<storeRoot>/cache-mounts/`. */
  storeRoot: string;
  /** A per-step directory this module owns (created if missing, removed by release()); same filesystem as the store. */
  scratch: string;
  /**
   * The build context; bind mounts without from= read from it. With `walk` (a BuildContext), they see only what
   * .dockerignore lets through, exactly the files their cache key covers; without, the whole directory.
   */
  context: { root: string } & Partial<ViewableContext>;
  /**
   * Rootfs dir of the stage or image `name` names, a --build-context directory (seen through its .dockerignore, as
   * the main context is), or undefined for scratch.
   */
  stageRootfs(name: string): Promise<string | ({ root: string } & Partial<ViewableContext>) | undefined>;
  /** Secrets from the CLI's --secret flags, by id. */
  secrets: Map<string, SecretSource>;
  /** The host agent socket for an ssh id (--ssh), or undefined when none was given; absent: no ssh ids at all. */
  sshSocket?(id: string): Promise<string | undefined>;
  signal: AbortSignal;
  range?: SourceRange;
  /** The RUN's working directory: relative targets are resolved against it (default "/"). */
  workdir?: string;
  /**
   * Fills the cache mount directory `dir` from an imported cache (--cache-from) when the store has none yet; called
   * holding the mount's lock, before the directory is created.
   */
  restoreCacheMount?(id: string, dir: string): Promise<void>;
}

export interface PreparedRunMounts {
  /** For ProcessSpec.extraMounts, parents before children. */
  mounts: BindMount[];
  /** "NAME=value" secret env vars for ProcessSpec.env only — never for the image config, history or cache key. */
  env: string[];
  /** Drops locks and scratch copies; safe to call more than once. */
  release(): Promise<void>;
}

function opts(range: SourceRange | undefined): { range?: SourceRange } {
  return range ? { range } : {};
}

function cpArchive(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("cp", ["-a", "--reflink=auto", "--", from, to], (err, _o, stderr) =>
      err
        ? reject(
            new BuildError("MOUNT_COPY_FAILED", `cannot copy ${from} for a read-write bind mount: ${String(stderr).trim() || err.message}`, { cause: err }),
          )
        : resolve(),
    );
  });
}

/** Creates `dir` with the mount's owner and mode unless it exists; the first user of a cache decides them, as in BuildKit. */
async function ensureDir(dir: string, uid: number, gid: number, mode: number): Promise<void> {
  try {
    await mkdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return;
    throw e;
  }
  await chown(dir, uid, gid);
  await chmod(dir, mode);
}

function secretValue(id: string, source: SecretSource, range: SourceRange | undefined): Promise<Buffer | undefined> {
  if (source.env !== undefined) {
    const v = (source.environment ?? process.env)[source.env];
    return Promise.resolve(v === undefined ? undefined : Buffer.from(v, "utf8"));
  }
  if (source.src !== undefined)
    return readFile(source.src).catch((e: unknown) => {
      // The message names the file, never its content.
      throw new BuildError("SECRET_NOT_FOUND", `secret ${JSON.stringify(id)}: cannot read ${source.src}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
        ...opts(range),
        cause: e,
      });
    });
  return Promise.resolve(undefined);
}

/** BuildKit's target for the n-th ssh mount of a RUN without target= (llb's AddSSHSocket default). */
export function sshDefaultTarget(n: number): string {
  return `/run/buildkit/ssh_agent.${n}`;
}

/**
 * The SSH_AUTH_SOCK BuildKit gives a RUN with ssh mounts: the first one's target, unless the RUN's environment
 * already sets it. Undefined when the RUN has no ssh mount or the variable is already set.
 */
export function sshAuthSock(specs: readonly MountSpec[], workdir: string, hasVar: boolean): string | undefined {
  const first = specs.find((s) => s.type === "ssh");
  if (!first || hasVar) return undefined;
  return first.target === "" ? sshDefaultTarget(0) : posix.resolve(workdir, first.target);
}

/**
 * A socket of our own, owned uid:gid with `mode`, that relays every connection to the host agent: the RUN's user
 * may open it (BuildKit's forwarded socket has these options too) without the host socket's permissions changing.
 * It lives in a short temp dir: unix socket paths are limited to 108 bytes.
 */
async function sshProxy(host: string, uid: number, gid: number, mode: number): Promise<{ path: string; close: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "tsbuild-ssh-"));
  const path = join(dir, "agent.sock");
  const server = createServer((client) => {
    const upstream = connect(host);
    client.pipe(upstream).on("error", () => client.destroy());
    upstream.pipe(client).on("error", () => upstream.destroy());
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  const open = new Set<Socket>();
  server.on("connection", (c) => {
    open.add(c);
    c.on("close", () => open.delete(c));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve());
    });
    await chown(path, uid, gid);
    await chmod(path, mode);
  } catch (e) {
    server.close();
    await rm(dir, { recursive: true, force: true });
    throw new BuildError("MOUNT_COPY_FAILED", `cannot create the ssh agent socket for RUN --mount=type=ssh: ${(e as Error).message}`, { cause: e });
  }
  let closed = false;
  return {
    path,
    async close() {
      if (closed) return;
      closed = true;
      for (const c of open) c.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Prepares every mount of one RUN. On failure, whatever was already taken is released before the error propagates. */
export async function prepareRunMounts(specs: MountSpec[], ctx: RunMountContext): Promise<PreparedRunMounts> {
  const releases: (() => Promise<void>)[] = [];
  let released: Promise<void> | undefined;
  const release = (): Promise<void> => {
    released ??= (async () => {
      for (const r of releases.reverse()) await r().catch(() => undefined);
      await rm(ctx.scratch, { recursive: true, force: true });
    })();
    return released;
  };
  const mounts: BindMount[] = [];
  const env: string[] = [];
  const workdir = ctx.workdir ?? "/";
  const range = ctx.range;
  try {
    await mkdir(ctx.scratch, { recursive: true, mode: 0o700 });
    let n = 0;
    let sshIndex = 0;
    for (const spec of specs) {
      throwIfAborted(ctx.signal);
      const target = spec.type === "ssh" && spec.target === "" ? sshDefaultTarget(sshIndex) : spec.target === "" ? "" : posix.resolve(workdir, spec.target);
      if (spec.type === "ssh") sshIndex++;
      const slot = join(ctx.scratch, `m${n++}`);
      switch (spec.type) {
        case "tmpfs":
          mounts.push({ source: "tmpfs", destination: target, readonly: false, type: "tmpfs" });
          break;
        case "cache": {
          const uid = spec.uid ?? 0;
          const gid = spec.gid ?? 0;
          const mode = spec.mode ?? 0o755;
          await ensureCacheMountsDir(ctx.storeRoot);
          const dir = storeLayout(ctx.storeRoot).cacheMount(cacheMountId(spec));
          let source = dir;
          if (spec.sharing !== "shared") {
            const unlock = await lockCacheMount(dir, spec.sharing === "locked", ctx.signal);
            if (unlock) releases.push(unlock);
            else {
              // private and in use elsewhere: a fresh, throwaway instance (BuildKit creates a new one too).
              source = slot;
            }
          }
          // Only a store without the directory restores: checked first, so a shared mount in use never waits here.
          if (source === dir && ctx.restoreCacheMount && !(await lstat(dir).catch(() => undefined))) {
            // A shared mount takes no lock to run, but its restore does: two builds never unpack into one directory.
            const unlock = spec.sharing === "shared" ? await lockCacheMount(dir, true, ctx.signal) : undefined;
            try {
              await ctx.restoreCacheMount(cacheMountId(spec), dir);
            } finally {
              await unlock?.();
            }
          }
          await ensureDir(source, uid, gid, mode);
          mounts.push({ source, destination: target, readonly: spec.readonly });
          break;
        }
        case "bind": {
          let root = ctx.context.root;
          let viewable: Partial<ViewableContext> | undefined = ctx.context;
          if (spec.from !== undefined) {
            const stage = await ctx.stageRootfs(spec.from);
            if (stage === undefined)
              throw new BuildError("UNSUPPORTED", `RUN --mount from=${spec.from}: a bind mount from scratch is not supported`, {
                ...opts(range),
                hint: "bind from a stage, an image or a --build-context, or use type=tmpfs for an empty directory",
              });
            root = typeof stage === "string" ? stage : stage.root;
            viewable = typeof stage === "string" ? undefined : stage;
          }
          // resolveInRoot keeps `..` and symlinks inside root, as the container would see them.
          const host = await resolveInRoot(root, spec.source ?? "/");
          let st;
          try {
            st = await lstat(host);
          } catch {
            throw new BuildError(
              "MOUNT_SOURCE_NOT_FOUND",
              `RUN --mount: source ${JSON.stringify(spec.source ?? "/")} not found${spec.from !== undefined ? ` in stage ${spec.from}` : " in the build context"}`,
              opts(range),
            );
          }
          // A context directory is mounted as is only when .dockerignore leaves nothing out below it.
          const walk = viewable?.walk?.bind(viewable);
          const view =
            walk && st.isDirectory()
              ? await contextView({ walk }, relative(root, host).split(sep).join("/") || ".", st, slot, { writable: !spec.readonly, signal: ctx.signal })
              : undefined;
          if (view !== undefined) mounts.push({ source: view, destination: target, readonly: spec.readonly });
          else if (spec.readonly) mounts.push({ source: host, destination: target, readonly: true });
          else {
            // Writes through a rw bind are discarded: mount a copy, never the context or the stage itself.
            await cpArchive(host, slot);
            mounts.push({ source: slot, destination: target, readonly: false });
          }
          break;
        }
        case "ssh": {
          const id = spec.id ?? "default";
          const host = ctx.sshSocket ? await ctx.sshSocket(id) : undefined;
          if (host === undefined) {
            // BuildKit: an optional ssh mount with no such id is simply left out (SSH_AUTH_SOCK is still set).
            if (spec.required) throw sshNotFound(id, range);
            break;
          }
          const proxy = await sshProxy(host, spec.uid ?? 0, spec.gid ?? 0, spec.mode ?? 0o600);
          releases.push(proxy.close);
          mounts.push({ source: proxy.path, destination: target, readonly: false });
          break;
        }
        case "secret": {
          const id = spec.id as string;
          const source = ctx.secrets.get(id);
          const value = source ? await secretValue(id, source, range) : undefined;
          if (value === undefined) {
            if (spec.required)
              throw new BuildError("SECRET_NOT_FOUND", `secret ${JSON.stringify(id)} not found`, {
                ...opts(range),
                hint: `pass it with --secret id=${id},src=<file> or --secret id=${id},env=<VAR>`,
              });
            break;
          }
          if (spec.env !== undefined) env.push(`${spec.env}=${value.toString("utf8")}`);
          if (target !== "") {
            await writeFile(slot, value, { mode: 0o600 });
            await chown(slot, spec.uid ?? 0, spec.gid ?? 0);
            await chmod(slot, spec.mode ?? 0o400);
            mounts.push({ source: slot, destination: target, readonly: true });
          }
          break;
        }
      }
    }
  } catch (e) {
    await release();
    throw e;
  }
  // Parents first, so a mount nested in another mount's target is not hidden by it.
  const depth = (m: BindMount) => m.destination.split("/").filter(Boolean).length;
  mounts.sort((a, b) => depth(a) - depth(b));
  return { mounts, env, release };
}
