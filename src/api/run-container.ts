// `tsbuild run`: one process from an image, as `docker run --rm` starts it, on the executor and snapshotter RUN uses.
// The image's filesystem is a throwaway snapshot in the store's tmp area (over the image's kept snapshot when a build
// made one, else over a private unpack): nothing of a run reaches an image, a layer or the build cache.
import { randomBytes } from "node:crypto";
import { mkdir, stat } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { AbortError, BuildError, UsageError, throwIfAborted } from "../errors.js";
import type { Engine } from "../engine.js";
import type { BindMount, Executor, ProcessSpec } from "../executor/types.js";
import type { ExecutorPreference } from "../executor/select-executor.js";
import { lookupUser } from "../executor/user-lookup.js";
import { resolveInRoot } from "../fs/rootfs-path.js";
import { containerArgv, containerEnv } from "../image/container-command.js";
import { hostPlatform } from "../image/platform.js";
import { extractStoredLayers } from "../layer/extract-stored.js";
import type { SnapshotterKind } from "../snapshot/snapshotter.js";
import { imageChainKey } from "../solver/base-image.js";
import { requireImage } from "../solver/image-writer.js";
import { acquireBuildLock } from "../store/locks.js";
import { storeLayout } from "../store/layout.js";
import { createHasher } from "../util/hasher.js";
import { errnoCode } from "../util/errno.js";

/** `-v HOST:CTR[:ro]`: a host directory or file bound into the container. */
export interface VolumeSpec {
  source: string;
  destination: string;
  readonly: boolean;
}

export interface RunContainerOptions {
  /** The image, resolved like every command's IMAGE argument (requireImage). */
  image: string;
  /** The arguments after IMAGE: replace the image's CMD. */
  args?: string[];
  /** --entrypoint: replaces ENTRYPOINT and drops CMD; "" resets ENTRYPOINT. */
  entrypoint?: string;
  /** -e / --env-file entries after the image's Env, later winning; a bare KEY unsets KEY. */
  env?: string[];
  /** -w: the working directory (created when missing, as docker does); default the image's WORKDIR, else /. */
  workdir?: string;
  /** -u: name, uid, uid:gid or name:group, looked up in the image's /etc/passwd and /etc/group; default its USER. */
  user?: string;
  volumes?: VolumeSpec[];
  /** default: a private network behind slirp4netns; none: only lo; host: the host's network. */
  network?: ProcessSpec["network"];
  executor?: ExecutorPreference;
  snapshotter?: SnapshotterKind;
  /** -i: copied to the process's stdin. */
  stdin?: NodeJS.ReadableStream;
  /** -t: the process inherits this process's fds 0-2 (the caller checks they are a terminal); TERM=xterm. */
  terminal?: boolean;
  stdout(chunk: Uint8Array): void;
  stderr(chunk: Uint8Array): void;
  signal?: AbortSignal;
}

export interface RunContainerResult {
  /** The process's exit status (128+n when a signal n ended it). */
  exitCode: number;
  /** 12 hex digits, also the container's hostname (as docker's short container id). */
  containerId: string;
}

/** Parses `HOST:CTR[:ro|rw]`; HOST must be an absolute path (named volumes do not exist here), CTR absolute. */
export function parseVolume(spec: string): VolumeSpec {
  const parts = spec.split(":");
  const [source, destination, mode] = parts;
  const example = "e.g. -v /srv/data:/data or -v /srv/data:/data:ro";
  if (parts.length < 2 || parts.length > 3 || !source || !destination)
    throw new UsageError("INVALID_VOLUME", `-v ${JSON.stringify(spec)}: expected HOST:CONTAINER[:ro]`, { hint: example });
  if (!isAbsolute(source))
    throw new UsageError(
      "INVALID_VOLUME",
      `-v ${JSON.stringify(spec)}: the host path ${JSON.stringify(source)} must be absolute (tsbuild has no named volumes)`,
      {
        hint: example,
      },
    );
  if (!isAbsolute(destination))
    throw new UsageError("INVALID_VOLUME", `-v ${JSON.stringify(spec)}: the container path ${JSON.stringify(destination)} must be absolute`, { hint: example });
  if (mode !== undefined && mode !== "ro" && mode !== "rw")
    throw new UsageError("INVALID_VOLUME", `-v ${JSON.stringify(spec)}: unknown option ${JSON.stringify(mode)} (ro or rw)`, { hint: example });
  return { source, destination, readonly: mode === "ro" };
}

async function checkVolumeSource(v: VolumeSpec): Promise<void> {
  try {
    await stat(v.source);
  } catch (e) {
    throw new UsageError(
      "MOUNT_SOURCE_NOT_FOUND",
      `-v ${v.source}:${v.destination}: ${errnoCode(e) === "ENOENT" ? "the host path does not exist" : `cannot use the host path (${errnoCode(e) ?? String(e)})`}`,
      { hint: "create it first (docker's --mount refuses a missing source too)", cause: e },
    );
  }
}

/** The executor RUN would use: the engine's own, else the one `pref` picks, with Docker's seccomp and the user-mode network. */
async function openExecutor(engine: Engine, pref: ExecutorPreference): Promise<{ executor: Executor; close(): Promise<void> }> {
  if (engine.executor) return { executor: engine.executor, close: () => Promise.resolve() };
  const [{ selectExecutor }, { defaultResourceLimits }, { sandboxHooks }] = await Promise.all([
    import("../executor/select-executor.js"),
    import("../executor/sandbox-policy.js"),
    import("../executor/sandbox-hooks.js"),
  ]);
  const hooks = sandboxHooks();
  try {
    return { executor: await selectExecutor(pref, { limits: defaultResourceLimits(), hooks }), close: () => hooks.close() };
  } catch (e) {
    await hooks.close();
    throw e;
  }
}

/** Creates the working directory in the snapshot when the image lacks it (root-owned 0755, as docker does). */
async function ensureWorkdir(rootfs: string, cwd: string): Promise<void> {
  const host = await resolveInRoot(rootfs, cwd);
  const st = await stat(host).catch(() => undefined);
  if (st?.isDirectory()) return;
  try {
    if (st) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    await mkdir(host, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new BuildError("NOT_A_DIRECTORY", `cannot use working directory ${cwd}: it is not a directory in the image (${errnoCode(e) ?? String(e)})`, {
      hint: "pick another directory with -w",
      cause: e,
    });
  }
}

/** Runs the image's command (or the given one) to its end; the run's snapshot is gone when this returns. */
export async function runContainer(engine: Engine, opts: RunContainerOptions): Promise<RunContainerResult> {
  const signal = opts.signal ?? new AbortController().signal;
  if (opts.workdir !== undefined && !opts.workdir.startsWith("/"))
    throw new UsageError("BAD_FLAG_VALUE", `-w ${JSON.stringify(opts.workdir)}: the working directory must be an absolute path`);
  const volumes = opts.volumes ?? [];
  for (const v of volumes) await checkVolumeSource(v);
  // The shared lock builds take: a prune cannot delete the image's blobs or kept snapshot under a running container.
  const lock = await acquireBuildLock(engine.root, signal);
  const cleanups: (() => Promise<void>)[] = [() => lock.release()];
  try {
    const img = await requireImage(engine.content, engine.images, opts.image);
    const config = img.config.config ?? {};
    const argv = containerArgv(config, opts.image, {
      ...(opts.entrypoint !== undefined ? { entrypoint: opts.entrypoint } : {}),
      args: opts.args ?? [],
    });
    const scratch = await engine.scratch("run");
    cleanups.unshift(() => scratch.release());
    const layers = img.manifest.layers.map((l) => ({ diffId: l.digest }));
    const kind = opts.snapshotter ?? "auto";
    // A kept snapshot of exactly these layers (made by a build FROM this image) is only read, as an overlay lower dir.
    const kept = storeLayout(engine.root).snapshot(imageChainKey(await createHasher(), img.manifest.config.digest, hostPlatform()));
    let lower = kind !== "copy" && (await stat(kept).catch(() => undefined))?.isDirectory() ? kept : undefined;
    if (!lower) {
      lower = join(scratch.path, "image");
      await mkdir(lower);
      await extractStoredLayers(engine.content, layers, lower, signal);
    }
    throwIfAborted(signal);
    const snap = await engine.snapshotter(kind).prepare(lower, join(scratch.path, "snap"));
    cleanups.unshift(() => snap.release());
    // No USER is root, looked up like any other (HOME and root's supplementary groups come from the image).
    const userSpec = opts.user || config.User || "0";
    const user = await lookupUser(snap.path, userSpec);
    // docker run's groups: the primary gid, then the /etc/group memberships lookupUser found (runc's rule, as for RUN).
    const groups = [user.gid, ...(user.additionalGids ?? []).filter((g) => g !== user.gid)];
    const cwd = opts.workdir ?? (config.WorkingDir || "/");
    await ensureWorkdir(snap.path, cwd);
    const containerId = randomBytes(6).toString("hex");
    const mounts: BindMount[] = volumes.map((v) => ({ source: v.source, destination: v.destination, readonly: v.readonly }));
    const spec: ProcessSpec = {
      args: argv,
      env: containerEnv(config, { hostname: containerId, tty: opts.terminal === true, env: opts.env ?? [], ...(user.home ? { home: user.home } : {}) }),
      cwd,
      uid: user.uid,
      gid: user.gid,
      ...(groups.length ? { additionalGids: groups } : {}),
      hostname: containerId,
      network: opts.network ?? "default",
      ...(mounts.length ? { extraMounts: mounts } : {}),
    };
    const { executor, close } = await openExecutor(engine, opts.executor ?? "auto");
    cleanups.unshift(close);
    const { exitCode } = await executor.run(
      spec,
      snap.path,
      {
        stdout: opts.stdout,
        stderr: opts.stderr,
        ...(opts.stdin && !opts.terminal ? { stdin: opts.stdin } : {}),
        ...(opts.terminal ? { inheritStdio: true } : {}),
      },
      signal,
    );
    return { exitCode, containerId };
  } catch (e) {
    if (e instanceof AbortError) throw new AbortError("run cancelled: the container was stopped");
    throw e;
  } finally {
    for (const c of cleanups) await c().catch(() => undefined);
  }
}
