// How a layer step (RUN, COPY, ADD, WORKDIR) is keyed, kept apart from how it runs: key parts from the instruction,
// the stage state and the digests of what it reads; execute() is only called on a cache miss.
import { join, resolve, posix } from "node:path";
import { AbortError, BuildError, isTsbuildError } from "../errors.js";
import { restoreCacheMount } from "../cache/cache-mounts.js";
import { formatBytes } from "../progress/tty-renderer.js";
import { resolveSourceRef, type BuildPlan, type PlannedStage, type SourceRef, type StageEdge } from "../frontend/plan.js";
import { type TypedInstruction } from "../frontend/instructions.js";
import type { Instruction, SourceRange, Stage } from "../frontend/types.js";
import { applyCopy, deferredCopy, ensureDir, type RemoteItem } from "./copy.js";
import { isRemoteSource, planRemoteSource, type RemotePlan } from "./remote-source.js";
import { lookupUser } from "../executor/user-lookup.js";
import type { LayerEntry } from "../layer/types.js";
import { argOverEnv, DEFAULT_SHELL, expansionEnv, type StageState } from "./stage-state.js";
import { executeRun, proxyEnv, runArgv, runHistoryArgs } from "./run-instruction.js";
import { cacheMountId, parseMountSpec } from "./mount-spec.js";
import { prepareRunMounts, sshAuthSock } from "./run-mounts.js";
import { type KeyParts } from "../cache/keys.js";
import { digestContextSources } from "../context/source-digest.js";
import type { MountSpec } from "./mount-spec.js";
import { expand, type BuildSession, type NamedContextDir } from "./build-session.js";
import { imageRootfs, resolveImage } from "./base-image.js";
import { parseEnvEntry } from "../image/env.js";

export type LayerKind = Extract<TypedInstruction, { kind: "RUN" | "COPY" | "ADD" | "WORKDIR" }>;

export function isLayerStep(t: TypedInstruction): t is LayerKind {
  return t.kind === "RUN" || t.kind === "COPY" || t.kind === "ADD" || t.kind === "WORKDIR";
}

/** A step that may change files: how it is keyed, kept apart from how it runs (only on a miss). */
export interface LayerStepPlan {
  parts: KeyParts;
  /** Per files-part, the selected paths (to name changed files when explaining a miss). */
  files?: Record<string, Record<string, string>>;
  createdBy: string;
  /** Config changes the step makes whether it runs or hits (WORKDIR). */
  effect?: () => void;
  /**
   * COPY/ADD --link: keyed without the parent (scheduler.ts) and executed on an empty directory, never the stage's
   * rootfs, so the layer is the same on any base and is only appended to it.
   */
  link?: boolean;
  /** The step writes no layer (history `empty_layer`): `WORKDIR /`, for which BuildKit makes no directory. */
  noLayer?: boolean;
  /** Runs the step on the materialised rootfs (an empty directory for `link`) and returns the exact changes. */
  execute(rootfs: string): Promise<LayerEntry[]>;
  /**
   * The same changes, computed from the rootfs without writing into it (copy.ts deferredCopy), when the step can:
   * the stage's rootfs then lacks them until it is next materialised. Undefined (nothing done) when it cannot.
   */
  executeDeferred?(rootfs: string): Promise<LayerEntry[] | undefined>;
}

/** The key parts of a RUN's environment, by variable: ENV wins over ARG as in runEnv (proxy args stay out, as in Docker). */
export function envParts(state: StageState): KeyParts {
  const parts: KeyParts = {};
  const env = new Set<string>();
  for (const kv of state.config.config.Env ?? []) {
    const [k, v] = parseEnvEntry(kv);
    env.add(k);
    parts[`env:${k}`] = v;
  }
  for (const [k, v] of state.args) if (v !== undefined && (!env.has(k) || argOverEnv(state, k))) parts[`arg:${k}`] = v;
  return parts;
}

export async function planLayerStep(run: BuildSession, stage: Stage, state: StageState, t: LayerKind, node: string): Promise<LayerStepPlan> {
  const range = t.src.range;
  const env = () => expansionEnv(state);
  const x = (w: string) => expand(run, w, env(), range);
  const epochParts: KeyParts = { epoch: String(run.epoch), ...(run.clampEpoch !== undefined ? { clamp: String(run.clampEpoch) } : {}) };
  switch (t.kind) {
    case "WORKDIR": {
      const prev = state.config.config.WorkingDir || "/";
      const path = posix.resolve(prev, x(t.path));
      const user = state.config.config.User;
      return {
        // The user's uid/gid come from /etc/passwd in the rootfs, which the parent key already covers.
        parts: { instruction: `WORKDIR ${path}`, user: user ?? "", ...epochParts },
        createdBy: `WORKDIR ${path}`,
        ...(path === "/" ? { noLayer: true } : {}),
        effect: () => {
          state.config.config.WorkingDir = path;
        },
        async execute(rootfs) {
          // BuildKit's WORKDIR mkdir: a bare numeric USER gives uid:uid, as COPY --chown does (a name: its passwd gid,
          // an unknown name: root).
          const owner = user ? await lookupUser(rootfs, user, { numericGidDefault: "same", lenient: true }) : undefined;
          return ensureDir(rootfs, path, owner ? { uid: owner.uid, gid: owner.gid } : undefined, run.epoch);
        },
      };
    }
    case "COPY":
    case "ADD": {
      const e = env();
      const sources = t.sources.map((s) => expand(run, s, e, range));
      const dest = expand(run, t.dest, e, range);
      const chown = t.chown !== undefined ? expand(run, t.chown, e, range) : undefined;
      const chmod = t.chmod !== undefined ? expand(run, t.chmod, e, range) : undefined;
      const heredocs = t.heredocs.map((h) => ({ name: h.name, content: h.expand ? expand(run, h.content, e, range, true) : h.content }));
      const workdir = state.config.config.WorkingDir || "/";
      // ADD's URLs and git repositories: keyed by what they serve (content digest, commit), fetched as needed.
      const remote =
        t.kind === "ADD"
          ? await planRemoteSources(run, t, sources, t.checksum !== undefined ? expand(run, t.checksum, e, range) : undefined, range)
          : new Map<string, RemotePlan>();
      const local = sources.filter((s) => !remote.has(s));
      const exclude = t.exclude.map((p) => expand(run, p, e, range));
      const select = { exclude, parents: t.parents };
      // BuildKit links (MergeOp) only without --chmod; with it the copy runs on the stage's rootfs as usual.
      const link = t.link && chmod === undefined;
      const owner = link && chown !== undefined ? linkChown(t.kind, chown, range) : chown;
      const flagText = [
        t.parents ? " --parents" : "",
        ...exclude.map((p) => ` --exclude=${p}`),
        link ? " --link" : "",
        chown !== undefined ? ` --chown=${chown}` : "",
        chmod !== undefined ? ` --chmod=${chmod}` : "",
        t.unpack !== undefined ? ` --unpack=${t.unpack}` : "",
      ].join("");
      const parts: KeyParts = {
        instruction: `${t.kind}${flagText} ${[...sources.map((s) => remote.get(s)?.keyText ?? s), dest].join(" ")}`,
        // A linked layer does not depend on the stage, only on where it lands: the destination after WORKDIR.
        ...(link ? { dest: posix.resolve(workdir, dest) } : { workdir }),
        ...epochParts,
      };
      for (const [i, s] of sources.entries()) {
        const r = remote.get(s);
        if (r) parts[`remote ${i}`] = r.part;
      }
      if (heredocs.length) parts["heredocs"] = run.hasher.key(JSON.stringify(heredocs));
      let files: Record<string, Record<string, string>> | undefined;
      let source: () => Promise<Parameters<typeof applyCopy>[0]["from"]>;
      const from = t.from !== undefined ? copySource(run, stage, t.src) : undefined;
      if (from !== undefined && from.kind !== "scratch") {
        const name = from.kind === "image" ? from.name : "";
        const dep = from.kind === "stage" ? run.staged.stages[from.index] : undefined;
        const named = from.kind === "context" ? namedContextDir(run, from.name, range) : undefined;
        if (named) {
          // A named directory is keyed and checked like the build context: by the content of what is copied.
          const digest = await digestContextSources(named.context, local, await named.hashCache(), run.hasher, { range, signal: run.signal, select });
          parts["from"] = `context ${from.kind === "context" ? from.name : ""}`;
          parts["files"] = digest.digest;
          files = lazyFiles(digest);
          source = async () => ({ kind: "context", context: named.context, keyed: digest.ledger });
        } else if (dep) {
          // A finished stage's files are determined by its key.
          parts["from"] = `stage ${dep.name ?? dep.index}: ${(await run.stages.result(dep)).state.key}`;
          source = async () => ({ kind: "rootfs", dir: await run.stages.dir(dep) });
        } else {
          parts["from"] = `image ${name}: ${(await resolveImage(run, name, range)).id}`;
          source = async () => ({ kind: "rootfs", dir: await imageRootfs(run, name, range) });
        }
      } else if (local.length === 0 && remote.size > 0) {
        source = async () => ({ kind: "context", context: run.context });
      } else {
        const digest = await digestContextSources(run.context, local, await run.hashCache(), run.hasher, { range, signal: run.signal, select });
        parts["files"] = digest.digest;
        files = lazyFiles(digest);
        // The copy checks it writes exactly what this key covers (CONTEXT_CHANGED otherwise).
        source = async () => ({ kind: "context", context: run.context, keyed: digest.ledger });
      }
      const copyOptions = async (rootfs: string): Promise<Parameters<typeof applyCopy>[0]> => {
        const fetched = new Map<string, RemoteItem>();
        for (const [s, r] of remote) fetched.set(s, await r.prepare());
        return {
          rootfs,
          sources,
          dest,
          workdir,
          from: await source(),
          select,
          ...(owner !== undefined ? { chown: owner } : {}),
          ...(chmod !== undefined ? { chmod } : {}),
          isAdd: t.kind === "ADD",
          ...(t.unpack !== undefined ? { unpack: t.unpack } : {}),
          ...(fetched.size ? { remote: fetched } : {}),
          heredocs,
          epoch: run.epoch,
          // SOURCE_DATE_EPOCH clamps every layer's timestamps, also of files an earlier RUN wrote (COPY --from).
          clampMtime: run.clampEpoch !== undefined,
          range,
          signal: run.signal,
          onProgress: ({ files, bytes }) => run.progress.emit({ kind: "step-progress", node, files, bytes }),
        };
      };
      // BuildKit's history names neither --link nor --exclude.
      const shown = t.src.flags.filter((f) => !/^--(link|exclude)(=|$)/.test(f));
      const flags = shown.length ? `${shown.join(" ")} ` : "";
      return {
        parts,
        ...(files ? { files } : {}),
        ...(link ? { link } : {}),
        createdBy: `${t.kind} ${flags}${t.sources.join(" ")} ${t.dest} # buildkit`,
        async execute(rootfs) {
          return applyCopy(await copyOptions(rootfs));
        },
        ...(remote.size === 0 ? { executeDeferred: async (rootfs: string) => deferredCopy(await copyOptions(rootfs)) } : {}),
      };
    }
    case "RUN": {
      const security = t.security ?? "sandbox";
      if (security !== "sandbox" && security !== "insecure")
        throw new BuildError("BAD_FLAG_VALUE", `RUN --security=${security}: expected sandbox or insecure`, { range });
      if (security === "insecure" && !run.allow.has("security.insecure"))
        throw new BuildError("ENTITLEMENT_REQUIRED", "RUN --security=insecure needs the security.insecure entitlement, which this build was not granted", {
          range,
          hint: "pass --allow security.insecure to run this step with every capability, no seccomp and the host's devices",
        });
      const network = t.network ?? run.defaultNetwork;
      if (network !== "default" && network !== "none" && network !== "host")
        throw new BuildError("BAD_FLAG_VALUE", `RUN --network=${network}: expected default, none or host`, { range });
      if (network === "host" && !run.allow.has("network.host"))
        throw new BuildError("ENTITLEMENT_REQUIRED", "RUN --network=host needs the network.host entitlement, which this build was not granted", {
          range,
          hint: "pass --allow network.host to share the host's network (including its loopback services) with RUN steps",
        });
      const e = env();
      const rawMounts = t.mounts.map((m) => expand(run, m, e, range));
      const specs = rawMounts.map((m) => parseMountSpec(m, range));
      for (const m of specs) if (m.type === "cache") run.cacheMounts.push({ stage: stage.index, id: cacheMountId(m), sharing: m.sharing });
      const input = {
        json: t.json,
        args: t.json ? t.command : [t.script],
        heredocs: t.heredocs,
        network,
        security,
        extraHosts: run.addHosts,
        extraEnv: proxyEnv(run.buildArgs),
      } as const;
      const { argv, script } = runArgv(state, { ...input, heredocs: [...input.heredocs] });
      // BuildKit sets SSH_AUTH_SOCK to the first ssh mount's socket unless ENV/ARG already did; a fixed path, so it
      // is keyed like the rest of the environment (the host socket's path never is).
      const stateEnv = envParts(state);
      const authSock = sshAuthSock(specs, state.config.config.WorkingDir || "/", "env:SSH_AUTH_SOCK" in stateEnv || "arg:SSH_AUTH_SOCK" in stateEnv);
      const sshEnv = authSock !== undefined ? [`SSH_AUTH_SOCK=${authSock}`] : [];
      const parts: KeyParts = {
        instruction: `RUN ${JSON.stringify(argv)}`,
        ...stateEnv,
        user: state.config.config.User ?? "",
        workdir: state.config.config.WorkingDir || "/",
        network,
        // BuildKit's exec op carries the security mode, so an insecure RUN never shares a sandboxed one's result.
        ...(security === "insecure" ? { security } : {}),
        ...(authSock !== undefined ? { "env:SSH_AUTH_SOCK": authSock } : {}),
        ...(run.addHosts.length ? { hosts: run.addHosts.map((h) => `${h.host}=${h.ip}`).join(",") } : {}),
        ...(run.clampEpoch !== undefined ? { clamp: String(run.clampEpoch) } : {}),
      };
      if (script) parts["script"] = script.content;
      const files: Record<string, Record<string, string>> = {};
      for (const [i, spec] of specs.entries()) {
        parts[`mount ${i}`] = rawMounts[i] as string;
        const src = await mountSourcePart(run, stage, spec, range);
        if (src) {
          parts[`files of mount ${i}`] = src.digest;
          if (src.files) files[`files of mount ${i}`] = src.files;
        }
      }
      return {
        parts,
        ...(Object.keys(files).length ? { files } : {}),
        // BuildKit's runCommandString: the |N args and the command, never the --mount flags.
        createdBy: `RUN ${runHistoryArgs(state)}${t.json ? t.command.join(" ") : [...(state.config.config.Shell ?? DEFAULT_SHELL), t.script].join(" ")} # buildkit`,
        async execute(rootfs) {
          const mounts = await prepareRunMounts(specs, {
            storeRoot: run.engine.root,
            // A sibling of executeRun's own scratch dir, which it removes itself.
            scratch: join(run.workdir, `mounts-${node}`),
            // The whole BuildContext: a bind mount exposes only the files .dockerignore keeps (its key covers exactly those).
            context: run.context,
            stageRootfs: async (name) => {
              const from = mountFrom(run, name, stage, range);
              // A named directory is seen through its own .dockerignore, exactly the files its key covers.
              if (from.kind === "context") return from.dir.context;
              if (from.kind === "stage") return run.stages.dir(from.stage);
              // An image reference (BuildKit mounts the image itself): its rootfs, read-only or copied like a stage's.
              return from.kind === "image" ? imageRootfs(run, from.name, range) : undefined;
            },
            secrets: run.secrets,
            sshSocket: (id) => run.ssh.socket(id),
            signal: run.signal,
            range,
            workdir: state.config.config.WorkingDir || "/",
            ...(run.cacheFrom.length ? { restoreCacheMount: (id: string, dir: string) => restoreMount(run, id, dir) } : {}),
          });
          try {
            return await executeRun(
              state,
              { ...input, heredocs: [...input.heredocs], mounts: mounts.mounts, secretEnv: [...mounts.env, ...sshEnv] },
              {
                rootfs,
                scratch: join(run.workdir, `run-${node}`),
                executor: await run.executor(),
                snapshotter: run.snapshotter,
                progress: run.progress,
                node,
                ...(run.clampEpoch !== undefined ? { epoch: run.clampEpoch } : {}),
                signal: run.signal,
                range,
              },
            );
          } finally {
            await mounts.release();
          }
        },
      };
    }
  }
}

/** Plan each remote source of an ADD once (the same URL twice is one download); flags only a remote source can take are refused for local ones. */
async function planRemoteSources(
  run: BuildSession,
  t: Extract<LayerKind, { kind: "COPY" | "ADD" }>,
  sources: string[],
  checksum: string | undefined,
  range: SourceRange,
): Promise<Map<string, RemotePlan>> {
  const out = new Map<string, RemotePlan>();
  const remote = sources.filter(isRemoteSource);
  const other = sources.find((s) => !isRemoteSource(s) && /^[a-z][a-z0-9+.-]*:\/\//i.test(s));
  if (other !== undefined)
    throw new BuildError("BAD_SOURCE", `ADD cannot fetch ${other}: remote sources are http(s) URLs and git repositories`, {
      range,
      hint: "download the file in a RUN step or beforehand into the build context",
    });
  if (remote.length === 0) {
    if (t.checksum !== undefined)
      throw new BuildError("BAD_FLAG_VALUE", "ADD --checksum needs a URL or git source", { range, hint: "remove --checksum, or ADD the file from its URL" });
    if (t.keepGitDir)
      throw new BuildError("BAD_FLAG_VALUE", "ADD --keep-git-dir needs a git source", {
        range,
        hint: "remove --keep-git-dir, or ADD the repository from its git URL",
      });
    return out;
  }
  if (checksum !== undefined && sources.length > 1)
    throw new BuildError("BAD_FLAG_VALUE", "ADD --checksum can't be specified for multiple sources", { range, hint: "one ADD per pinned source" });
  for (const s of remote) {
    if (out.has(s)) continue;
    out.set(
      s,
      await planRemoteSource(run, s, {
        ...(checksum !== undefined ? { checksum } : {}),
        ...(t.unpack !== undefined ? { unpack: t.unpack } : {}),
        keepGitDir: t.keepGitDir,
        range,
      }),
    );
  }
  return out;
}

/**
 * --chown for a linked layer, which is built apart from the stage's /etc/passwd: numeric ids and `root` only, as
 * BuildKit (which fails such a build with "invalid user index: -1"; moby/buildkit#7134 refuses it when parsing).
 */
export function linkChown(kind: string, chown: string, range: SourceRange): string {
  const parts = chown.split(":");
  const ids = parts.map((p) => (p === "root" ? "0" : p));
  if (parts.length > 2 || ids.some((p) => !/^[0-9]+$/.test(p)))
    throw new BuildError("BAD_FLAG_VALUE", `${kind} --link --chown=${chown}: a user or group name cannot be used with --link`, {
      range,
      hint: "a --link layer is built without the image's /etc/passwd and /etc/group: give numeric ids (--chown=1000:1000), or drop --link",
    });
  return ids.join(":");
}

/**
 * What a RUN mount reads that can change its result: a bind's files (context content, or the stage's key).
 * Cache mounts, tmpfs and secrets do not count: their contents are not part of the step's identity.
 */
export async function mountSourcePart(
  run: BuildSession,
  stage: Stage,
  spec: MountSpec,
  range: SourceRange,
): Promise<{ digest: string; files?: Record<string, string> } | undefined> {
  if (spec.type !== "bind") return undefined;
  if (spec.from !== undefined) {
    const from = mountFrom(run, spec.from, stage, range);
    if (from.kind === "context") {
      const named = from.dir;
      const d = await digestContextSources(named.context, [spec.source ?? "/"], await named.hashCache(), run.hasher, { range, signal: run.signal });
      return { digest: `context ${spec.from}: ${d.digest}`, files: d.files };
    }
    if (from.kind === "stage") return { digest: `stage ${from.stage.name ?? from.stage.index}: ${(await run.stages.result(from.stage)).state.key}` };
    // An image is keyed by its id, as COPY --from=<image> is; scratch is reported by run-mounts.
    return { digest: from.kind === "image" ? `image ${from.name}: ${(await resolveImage(run, from.name, range)).id}` : `unknown ${spec.from}` };
  }
  const d = await digestContextSources(run.context, [spec.source ?? "/"], await run.hashCache(), run.hasher, { range, signal: run.signal });
  return { digest: d.digest, files: d.files };
}

/** The directory a --build-context NAME=DIR gave (NAME as planned), or an error if the session lacks it. */
function namedContextDir(run: BuildSession, name: string, range: SourceRange): NamedContextDir {
  const c = run.namedContexts.get(name);
  if (!c) throw new BuildError("INTERNAL", `named context ${name} was planned but not opened`, { range });
  return c;
}

/** What a RUN --mount from= value names once expanded: a --build-context directory, a stage, an image, or scratch. */
function mountFrom(
  run: BuildSession,
  ref: string,
  current: Stage,
  range: SourceRange,
): { kind: "context"; dir: NamedContextDir } | { kind: "stage"; stage: Stage } | { kind: "image"; name: string } | { kind: "scratch" } {
  const r = resolveSourceRef(run.staged, ref, current, "--mount from", range, run.plan.namedContexts);
  if (r.kind === "context") return { kind: "context", dir: namedContextDir(run, r.name, range) };
  if (r.kind === "image") return { kind: "image", name: r.name };
  const stage = stageRef(run, ref, current, "--mount from", range);
  return stage ? { kind: "stage", stage } : { kind: "scratch" };
}

/** The stage a reference expanded at run time names (RUN --mount from=$VAR), or undefined for an image. */
export function stageRef(run: BuildSession, ref: string, current: Stage, via: StageEdge["via"], range: SourceRange): Stage | undefined {
  const r = resolveSourceRef(run.staged, ref, current, via, range, run.plan.namedContexts);
  if (r.kind !== "stage") return undefined;
  // A reference only the run-time value reveals must not close a loop either (it would wait on itself).
  if (reaches(run.plan, r.index, current.index))
    throw new BuildError("CIRCULAR_DEPENDENCY", `circular dependency detected on stage: ${current.name ?? `stage-${current.index}`}`, { range });
  return run.staged.stages[r.index];
}

/** Whether stage `from` is, or reads (directly or not), stage `to`. */
export function reaches(plan: BuildPlan, from: number, to: number): boolean {
  const seen = new Set<number>();
  const stack = [from];
  while (stack.length > 0) {
    const i = stack.pop() as number;
    if (i === to) return true;
    if (seen.has(i)) continue;
    seen.add(i);
    for (const e of (plan.stages[i] as PlannedStage).edges) stack.push(e.index);
  }
  return false;
}

/** The stage or image a COPY/ADD --from names, as planned. */
export function copySource(run: BuildSession, stage: Stage, instr: Instruction): SourceRef | undefined {
  return (run.plan.stages[stage.index] as PlannedStage).copyFrom.get(instr);
}

/**
 * A cache mount this store has no directory for, filled from the imported caches (--cache-from) that carry it. As
 * any cache import trouble, a damaged or refused tar is a warning: the RUN then starts with an empty cache mount.
 */
async function restoreMount(run: BuildSession, id: string, dir: string): Promise<void> {
  try {
    const r = await restoreCacheMount(run.engine.root, run.engine.content, run.cacheFrom, id, dir, { signal: run.signal });
    if (!r) return;
    const devices = r.skippedDevices ? `; ${r.skippedDevices} device node(s) left out` : "";
    run.progress.emit({ kind: "info", message: `restored cache mount ${JSON.stringify(id)} from ${r.from} (${formatBytes(r.entry.blob.size)}${devices})` });
  } catch (e) {
    if (run.signal.aborted || e instanceof AbortError || !isTsbuildError(e)) throw e;
    run.progress.emit({
      kind: "warning",
      message: `cache mount ${JSON.stringify(id)}: cannot restore it from the imported cache: ${e.message}; the RUN starts with an empty one`,
    });
  }
}

/** `{ files }` of a context digest, read only when a miss is explained (the per-file map of a big context is large). */
function lazyFiles(digest: { readonly files: Record<string, string> }): Record<string, Record<string, string>> {
  return {
    get files() {
      return digest.files;
    },
  };
}
