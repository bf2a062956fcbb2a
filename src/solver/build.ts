// The build, orchestration only: read the Dockerfile and context, run the checks, plan (frontend/plan.ts), open the
// session (lock, scratch, executor, caches), let the scheduler run the target's stages, then write the final image.
import { mkdir, stat } from "node:fs/promises";
import { join, resolve, relative } from "node:path";
import { availableParallelism } from "node:os";
import pLimit from "p-limit";
import type { Engine } from "../engine.js";
import { BuildError, AbortError, UsageError } from "../errors.js";
import { parseDockerfile } from "../frontend/parse.js";
import { runChecks } from "../frontend/checks.js";
import { findStage } from "../frontend/stages.js";
import { planBuild, type BuildPlan } from "../frontend/plan.js";
import { plannedStepCount } from "./step-numbers.js";
import { parseDockerignore } from "../frontend/dockerignore.js";
import type { Stage, Warning } from "../frontend/types.js";
import { normalizeName } from "../image/reference.js";
import { openBuildContext } from "../context/build-context.js";
import type { NamedContext } from "../context/named-context.js";
import { MAX_DOCKERFILE_BYTES, MAX_DOCKERIGNORE_BYTES, readRegularFileIfExists } from "../fs/read-input.js";
import { annotateManifest, type StoredImage } from "./image-writer.js";
import { type MountSharing, type SecretSource } from "./mount-spec.js";
import { sshAgents, type SshSource } from "./ssh-agents.js";
import type { ExecutorPreference } from "../executor/select-executor.js";
import type { Rlimit } from "../executor/sandbox-policy.js";
import { annotationsFor, type Annotation } from "../image/annotations.js";
import type { BuildSandboxHooks } from "../executor/sandbox-hooks.js";
import type { Snapshotter, SnapshotterKind } from "../snapshot/snapshotter.js";
import { createHasher } from "../util/hasher.js";
import { type StepRecord } from "../cache/records.js";
import { openFileHashCache, type FileHashCache } from "../context/file-hash-cache.js";
import { releaseStageRootfs } from "./stage-rootfs.js";
import { acquireBuildLock, cleanStaleScratch, isProcessAlive, isStaleScratch } from "../store/locks.js";
import { reapOrphanContainers } from "../executor/orphan-containers.js";
import { detectCgroupLayout, reapStaleRunCgroups } from "../executor/cgroups.js";
import { type CacheSource } from "../cache/cache-source.js";
import type { RegistryOptions } from "../registry/client.js";
import { PROXY_ARGS, once, type BuildSession, type NamedContextDir, type StageResult, type StepReport } from "./build-session.js";
import { runStage, stageDir } from "./scheduler.js";
import { finalImageKey, fromChain, orderConfig, reuseOrWriteImage } from "./final-image.js";
import { configPlatform, formatPlatform, hostPlatform, normalizePlatform, platformDirName } from "../image/platform.js";
import type { Descriptor, Digest, Platform } from "../image/types.js";
import { requireRunnable } from "../executor/binfmt.js";
import { writeImageIndex } from "../store/image-index.js";
import type { Executor } from "../executor/types.js";
import { storeLayout } from "../store/layout.js";
import type { ProgressSink } from "../progress/events.js";

export interface BuildOptions {
  /** The build context directory. */
  contextDir: string;
  /** Named build contexts, by name: override a stage or image of that name in FROM, --from and --mount from=. */
  namedContexts?: ReadonlyMap<string, NamedContext>;
  /** The context is a temporary directory (stdin, git, URL) removed after the build: keep no stat cache for it. */
  temporaryContext?: boolean;
  /** Path of the Dockerfile; defaults to <contextDir>/Dockerfile. */
  dockerfile?: string;
  /** Dockerfile text given directly (e.g. from stdin); `dockerfile` then only names it in messages. */
  dockerfileText?: string;
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  /** Platforms to build (default: the host's); several give an OCI image index with one manifest each. */
  platforms?: Platform[];
  /** SOURCE_DATE_EPOCH: image and history timestamps, and the mtime of directories a step creates. A
   *  SOURCE_DATE_EPOCH build arg wins, as in BuildKit. */
  sourceDateEpoch?: number;
  /** Name of the Dockerfile in messages (default: its path relative to the working directory). */
  dockerfileDisplayName?: string;
  /** Steps executed at once (RUN, COPY, ...), across stages; defaults to the number of cores. */
  jobs?: number;
  /** RUN sandbox: crun, runc or bwrap (auto: the first one installed). */
  executor?: ExecutorPreference;
  /** Entitlements granted to the build (buildx's --allow): "network.host" lets RUN --network=host share the host's network. */
  allow?: string[];
  /** Most processes one RUN may have at once (default DEFAULT_PIDS_LIMIT). */
  pidsLimit?: number;
  /** Size of every RUN's /dev/shm in bytes (buildx's --shm-size; default 64 MiB). Not in the cache key, as in BuildKit. */
  shmSize?: number;
  /** Resource limits every RUN's command starts with (buildx's --ulimit). Not in the cache key, as in BuildKit. */
  ulimits?: Rlimit[];
  /** buildx's --annotation: the manifest ones (for this build's platform) go on the image's manifest; the others are
   *  for the exporters (the OCI layout's index.json). */
  annotations?: Annotation[];
  /** Labels set on the final image (buildx's --label), over the Dockerfile's LABELs. */
  labels?: Record<string, string>;
  /** The network of a RUN without --network= (buildx's --network); "host" grants the network.host entitlement. */
  network?: "default" | "none" | "host";
  /** Extra /etc/hosts entries every RUN sees (buildx's --add-host); never in a layer. */
  addHosts?: { host: string; ip: string }[];
  /** Snapshots for RUN: overlayfs, or a copy of the rootfs (auto: overlay when it can be mounted). */
  snapshotter?: SnapshotterKind;
  /** Secrets for RUN --mount=type=secret, by id (from `--secret id=x,src=path|env=VAR`). */
  secrets?: Map<string, SecretSource>;
  /** SSH agents for RUN --mount=type=ssh, by id (from `--ssh default` or `--ssh ID=SOCKET|KEY…`). */
  ssh?: Map<string, SshSource>;
  /** Run every step, using no cached result (results are still recorded for later builds). */
  noCache?: boolean;
  /** Stages (by name or index) whose steps ignore the cache. */
  noCacheFilter?: string[];
  /** Imported caches (--cache-from), consulted after the store's own records, in order. */
  cacheFrom?: CacheSource[];
  /** Pull base images from their registry even when the store has them (digest references excepted). */
  pull?: boolean;
  /** Registry access for pulling base images (insecure hosts, credentials file, environment). */
  registry?: RegistryOptions;
  /** Where this build reports its steps, logs and warnings (default: the engine's sink). Per call, so two builds
   *  running at once on one engine each see only their own events. */
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export interface CacheReport {
  hits: number;
  misses: number;
  steps: StepReport[];
  /** Context files whose hash came from the stat cache / that were read. */
  contextFiles: { cached: number; hashed: number; bytes: number };
  /** Step records of every stage that was built, for --cache-to (mode=max) and of the target's chain (mode=min). */
  records: { stage: number; record: StepRecord }[];
  /** Cache mounts the RUN steps of each stage declared (by id; the first declaration's sharing). */
  cacheMounts: { stage: number; id: string; sharing: MountSharing }[];
  /** Stage indexes the target image's filesystem is built from (the target and its FROM-stage ancestors). */
  targetChain: number[];
  /** Key of the final-image record (reused when nothing changed, so the image id stays the same). */
  imageKey: string;
  /** Every platform's final image with its record key (one entry for a single-platform build). */
  images: { key: string; manifest: Descriptor; config: Digest }[];
}

/** The built image lives in the store (the stage rootfs dirs are gone); exporters read it from there. */
export interface BuildResult extends StoredImage {
  /** Several platforms: `manifest` is the image index and `config` the first platform's; each platform's image here. */
  platforms?: { platform: Platform; manifest: Descriptor; config: Digest }[];
  /** Normalised names the image was tagged with. */
  tags: string[];
  warnings: Warning[];
  cache: CacheReport;
}

export function build(engine: Engine, opts: BuildOptions): Promise<BuildResult> {
  return runBuild(engine, opts, { lockHeld: false });
}

/**
 * build() for callers that already hold the store's shared lock over more than the build (library buildImage: the
 * push, cache export and outputs after it); `lockHeld` skips taking a second one. Not part of the public API.
 */
export async function runBuild(engine: Engine, opts: BuildOptions, how: { lockHeld: boolean }): Promise<BuildResult> {
  const progress = opts.progress ?? engine.progress;
  const contextDir = resolve(opts.contextDir);
  const ctxStat = await stat(contextDir).catch(() => undefined);
  if (!ctxStat?.isDirectory())
    throw new BuildError("CONTEXT_NOT_FOUND", `build context ${opts.contextDir} is not a directory`, {
      hint: "pass the directory that holds your sources, e.g. `tsbuild -t name .`",
    });
  const dockerfilePath = opts.dockerfile ? resolve(opts.dockerfile) : join(contextDir, "Dockerfile");
  let text: string;
  if (opts.dockerfileText !== undefined) text = opts.dockerfileText;
  else {
    const read = await readRegularFileIfExists(dockerfilePath, {
      maxBytes: MAX_DOCKERFILE_BYTES,
      what: "Dockerfile",
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (read === undefined)
      throw new BuildError("DOCKERFILE_NOT_FOUND", `cannot read Dockerfile ${dockerfilePath}`, { hint: "use -f PATH to pick another Dockerfile" });
    text = read;
  }
  const displayName =
    opts.dockerfileDisplayName ?? (relative(process.cwd(), dockerfilePath).startsWith("..") ? dockerfilePath : relative(process.cwd(), dockerfilePath));
  const parsed = parseDockerfile(text, { file: displayName });
  // Build checks run on every build (BuildKit prints them too); they include the parser's own warnings.
  const checks = runChecks(parsed, { buildArgs: opts.buildArgs ?? {} });
  const warnings: Warning[] = checks.warnings.map((w) => ({ code: w.rule, message: w.message, ...(w.range ? { range: w.range } : {}) }));
  if (checks.errorOnWarnings && warnings.length > 0) {
    for (const w of warnings) progress.emit({ kind: "warning", message: w.message, rule: w.code, ...(w.range ? { range: w.range } : {}) });
    throw new BuildError("CHECK_FAILED", `${warnings.length} build check warning${warnings.length === 1 ? "" : "s"} with # check=error=true`, {
      ...(warnings[0]?.range ? { range: warnings[0].range } : {}),
      hint: "fix the warnings above, or drop error=true from the # check= directive",
    });
  }

  if (opts.ulimits?.length) {
    const { rlimitBeyondOurs } = await import("../executor/sandbox-policy.js");
    const beyond = rlimitBeyondOurs(opts.ulimits);
    if (beyond)
      throw new UsageError(
        "BAD_FLAG_VALUE",
        `--ulimit ${beyond.limit.name}: hard limit ${beyond.limit.hard === Infinity ? "unlimited" : beyond.limit.hard} is above tsbuild's own (${beyond.ours}), which it cannot raise here`,
        {
          hint: `ask for at most ${beyond.ours}, or run tsbuild with CAP_SYS_RESOURCE (or a higher limit: ulimit -H)`,
        },
      );
  }
  const tags = (opts.tags ?? []).map((t) => normalizeName(t));
  // Every stage reference resolved, and the stages the target needs, before anything runs: one plan per platform.
  const buildPlatform = hostPlatform();
  const platforms = opts.platforms?.length ? opts.platforms.map((p) => normalizePlatform(p)) : [buildPlatform];
  const multi = platforms.length > 1;
  const plans = platforms.map((platform) =>
    planBuild(parsed, {
      buildArgs: opts.buildArgs ?? {},
      platform,
      buildPlatform,
      ...(opts.target !== undefined ? { target: opts.target } : {}),
      namedContexts: new Map(
        [...(opts.namedContexts ?? [])].map(([k, v]) => [k, v.kind === "image" ? { kind: "image" as const, ref: v.ref } : { kind: "dir" as const }]),
      ),
    }),
  );
  const firstPlan = plans[0] as BuildPlan;
  const staged = firstPlan.staged;
  const target = firstPlan.target.stage;
  // RUN for a platform this machine cannot execute fails now, naming what to install, not with "exec format error".
  await requireRunnable(plans.flatMap((plan, i) => runPlatforms(plan, platforms[i] as Platform)));

  const ignoreText = await readDockerignore(contextDir, dockerfilePath);
  const context = openBuildContext(contextDir, ignoreText ? parseDockerignore(ignoreText) : []);
  // A local named directory filters with its own .dockerignore, never the main context's; a git or http one with
  // none (dockerui's namedcontext.go reads .dockerignore for `local:` contexts only).
  const namedContexts = new Map<string, NamedContextDir>();
  for (const [name, c] of opts.namedContexts ?? [])
    if (c.kind === "dir") {
      const ownIgnore = c.remote
        ? undefined
        : await readRegularFileIfExists(join(c.path, ".dockerignore"), { maxBytes: MAX_DOCKERIGNORE_BYTES, what: ".dockerignore file" });
      const ctx = openBuildContext(c.path, ownIgnore ? parseDockerignore(ownIgnore) : []);
      let cache: Promise<FileHashCache> | undefined;
      namedContexts.set(name.toLowerCase(), { context: ctx, hashCache: () => (cache ??= openFileHashCache(engine.root, ctx.root, hasher)) });
    }

  const buildArgs = new Map(Object.entries(opts.buildArgs ?? {}));
  const epochArg = buildArgs.get("SOURCE_DATE_EPOCH");
  if (epochArg !== undefined && !/^\d+$/.test(epochArg))
    throw new BuildError("BAD_SOURCE_DATE_EPOCH", `SOURCE_DATE_EPOCH must be a whole number of seconds, not ${JSON.stringify(epochArg)}`);
  const epochValue = epochArg !== undefined ? Number(epochArg) : opts.sourceDateEpoch;
  const epoch = epochValue ?? 0;
  const created = new Date(epochValue !== undefined ? epochValue * 1000 : Date.now()).toISOString();

  const controller = new AbortController();
  const onAbort = () => controller.abort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const hasher = await createHasher();
  const noCacheStages = new Set(opts.noCacheFilter ?? []);
  for (const f of noCacheStages)
    if (!findStage(staged, f))
      throw new BuildError("UNKNOWN_TARGET", `--no-cache-filter ${f}: there is no stage named ${JSON.stringify(f)}`, {
        hint: `stages: ${staged.stages.map((s) => s.name ?? String(s.index)).join(", ")}`,
      });
  // Shared with other builds; only a running prune excludes it. What killed builds left behind goes first.
  const lock = how.lockHeld ? { release: async () => {} } : await acquireBuildLock(engine.root, opts.signal);
  let scratch: Awaited<ReturnType<Engine["scratch"]>>;
  try {
    await reapOrphanContainers(
      (bundle) => orphanedIn(engine.root, bundle),
      (pid) => isProcessAlive(pid),
    );
    await reapStaleRunCgroups(await detectCgroupLayout(), (pid) => isProcessAlive(pid));
    await cleanStaleScratch(engine.root);
    scratch = await engine.scratch("build");
  } catch (e) {
    await lock.release();
    throw e;
  }
  let hashCache: Promise<FileHashCache> | undefined;
  // The sandbox machinery (executors, seccomp, networks) loads with the first RUN that must run: a build that hits
  // every step never pays for it.
  let hooks: BuildSandboxHooks | undefined;
  // Shared by every platform's session: one --jobs limit, one executor, one context hash cache, one vertex table.
  const limit = pLimit(Math.max(1, opts.jobs ?? availableParallelism()));
  const vertices = new Map<string, Promise<StepRecord>>();
  // Agents for key files start with the first RUN that mounts them and stop when the build ends.
  const ssh = sshAgents(opts.ssh ?? new Map());
  const executor = engine.executor
    ? () => Promise.resolve(engine.executor as Executor)
    : once(async () => {
        const [{ selectExecutor }, { defaultResourceLimits }, { sandboxHooks }] = await Promise.all([
          import("../executor/select-executor.js"),
          import("../executor/sandbox-policy.js"),
          import("../executor/sandbox-hooks.js"),
        ]);
        hooks = sandboxHooks();
        return selectExecutor(opts.executor ?? "auto", {
          limits: {
            ...defaultResourceLimits(),
            ...(opts.pidsLimit !== undefined ? { pids: opts.pidsLimit } : {}),
            ...(opts.shmSize !== undefined ? { shmBytes: opts.shmSize } : {}),
            ...(opts.ulimits?.length ? { rlimits: opts.ulimits } : {}),
          },
          hooks,
        });
      });
  const hashCacheOnce = () => (hashCache ??= openFileHashCache(engine.root, context.root, hasher));
  const sessions: BuildSession[] = [];
  const openSession = async (plan: BuildPlan, platform: Platform): Promise<BuildSession> => {
    const workdir = multi ? join(scratch.path, platformDirName(platform)) : scratch.path;
    if (multi) await mkdir(workdir, { recursive: true });
    const run: BuildSession = {
      engine,
      progress,
      // Steps reach other stages through these closures (called only once `run` exists), not the scheduler module.
      stages: { result: (st) => runStage(run, st), dir: (st) => stageDir(run, st) },
      staged: plan.staged,
      plan,
      escape: parsed.directives.escape,
      globalArgs: plan.globalArgs,
      buildArgs,
      usedBuildArgs: new Set(["SOURCE_DATE_EPOCH", ...plan.usedBuildArgs]),
      context,
      workdir,
      epoch,
      clampEpoch: epochValue,
      created,
      platform,
      ...(multi ? { platformLabel: formatPlatform(platform) } : {}),
      vertices,
      signal: controller.signal,
      stageRuns: new Map(),
      imageRootfs: new Map(),
      limit,
      stepCounter: 0,
      executor,
      // Asking for the host network on the command line is the entitlement itself, as with docker build --network host.
      allow: new Set([...(opts.allow ?? []), ...(opts.network === "host" ? ["network.host"] : [])]),
      defaultNetwork: opts.network ?? "default",
      addHosts: opts.addHosts ?? [],
      snapshotter: engine.snapshotter(opts.snapshotter ?? "auto"),
      secrets: opts.secrets ?? new Map(),
      ssh,
      hasher,
      hashCache: hashCacheOnce,
      namedContexts,
      noCache: (stage) => opts.noCache === true || [...noCacheStages].some((f) => findStage(plan.staged, f)?.index === stage.index),
      explainScope: `${context.root}\u0000${opts.dockerfileText !== undefined ? displayName : dockerfilePath}${multi ? `\u0000${formatPlatform(platform)}` : ""}`,
      steps: [],
      records: [],
      cacheMounts: [],
      cacheFrom: opts.cacheFrom ?? [],
      pull: opts.pull ?? false,
      registry: opts.registry ?? {},
      resolved: new Map(),
      snapshots: { root: engine.root, enabled: (opts.snapshotter ?? "auto") !== "copy" },
      rootfsList: [],
    };
    sessions.push(run);
    return run;
  };
  /** One platform's image: its target stage built (sharing vertices with the other platforms), then written. */
  const buildOne = async (run: BuildSession): Promise<PlatformImage> => {
    for (const name of PROXY_ARGS) if (buildArgs.has(name)) run.usedBuildArgs.add(name);
    const result = await run.stages.result(target);
    const labelled =
      opts.labels && Object.keys(opts.labels).length > 0
        ? { ...result.state.config, config: { ...result.state.config.config, Labels: { ...(result.state.config.config.Labels ?? {}), ...opts.labels } } }
        : result.state.config;
    const finalConfig = orderConfig({ ...labelled, created: run.created });
    const imageKey = finalImageKey(hasher, finalConfig, result.state.layers);
    const plain = await reuseOrWriteImage(run, imageKey, finalConfig, result.state.layers);
    // After the reuse record: the unannotated image stays the cache's, annotations are laid over it each build.
    const manifestAnnotations = annotationsFor(opts.annotations ?? [], "manifest", configPlatform(finalConfig));
    const stored = manifestAnnotations ? await annotateManifest(engine.content, plain, manifestAnnotations) : plain;
    return { ...stored, platform: run.platform, imageKey };
  };
  try {
    for (const [i, plan] of plans.entries()) await openSession(plan, platforms[i] as Platform);
    // The views count steps from the plan, so their totals never jump as stages start.
    progress.emit({ kind: "plan", steps: plans.reduce((n, plan) => n + plannedStepCount(plan), 0) });
    let images: PlatformImage[];
    try {
      // Platforms build in parallel; steps still take --jobs slots from the one shared limit.
      images = await Promise.all(sessions.map((run) => buildOne(run)));
    } catch (e) {
      controller.abort();
      // Let the other stages notice the abort before the scratch dir goes.
      await Promise.allSettled(sessions.flatMap((run) => [...run.stageRuns.values()]));
      if (opts.signal?.aborted) throw new AbortError();
      throw e;
    }
    const first = images[0] as PlatformImage;
    // Several platforms: one OCI index over the platforms' manifests (platform fields set), named by the tags.
    const top: StoredImage = multi
      ? {
          manifest: await writeImageIndex(
            engine.content,
            images.map((img) => ({ ...img.manifest, platform: img.platform })),
          ),
          config: first.config,
        }
      : { manifest: first.manifest, config: first.config };
    for (const t of tags) await engine.images.set(t, top.manifest);
    const usedBuildArgs = new Set(sessions.flatMap((run) => [...run.usedBuildArgs]));
    for (const name of buildArgs.keys())
      if (!usedBuildArgs.has(name)) warnings.push({ code: "UnusedBuildArg", message: `build arg ${name} was not consumed by any instruction` });
    for (const w of warnings) progress.emit({ kind: "warning", message: w.message, rule: w.code, ...(w.range ? { range: w.range } : {}) });
    const steps = sessions.flatMap((run) => run.steps);
    const hits = steps.filter((s) => s.cached).length;
    return {
      ...top,
      tags,
      warnings,
      ...(multi ? { platforms: images.map(({ imageKey: _k, ...img }) => img) } : {}),
      cache: {
        hits,
        misses: steps.length - hits,
        steps,
        contextFiles: hashCache ? { ...(await hashCache).counters } : { cached: 0, hashed: 0, bytes: 0 },
        records: sessions.flatMap((run) => run.records),
        cacheMounts: sessions.flatMap((run) => run.cacheMounts),
        targetChain: fromChain(sessions[0] as BuildSession, target),
        imageKey: first.imageKey,
        images: images.map((img) => ({ key: img.imageKey, manifest: img.manifest, config: img.config })),
      },
    };
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    // Hashes of files read before a failure are still right; keeping them makes the retry fast.
    if (hashCache && !opts.temporaryContext) await (await hashCache).save().catch(() => undefined);
    // Overlay stage dirs first: the scratch dir must not be removed through a mount.
    for (const run of sessions) for (const fs of run.rootfsList) await releaseStageRootfs(fs).catch(() => undefined);
    await hooks?.close();
    await ssh.close();
    await scratch.release();
    await lock.release();
  }
}

interface PlatformImage extends StoredImage {
  platform: Platform;
  imageKey: string;
}

/**
 * The platforms whose binaries the plan's RUN steps execute: each needed stage with a RUN runs on its own platform
 * (FROM --platform=...) or the target's. ONBUILD triggers of base images are not known yet and are not counted.
 */
function runPlatforms(plan: BuildPlan, target: Platform): Platform[] {
  const out: Platform[] = [];
  for (const index of plan.order) {
    const st = plan.stages[index];
    if (st && st.stage.instructions.some((i) => i.keyword === "RUN")) out.push(st.platform ?? target);
  }
  return out;
}

/** A container bundle inside a scratch dir of this store whose build is gone. */
export async function orphanedIn(root: string, bundle: string): Promise<boolean> {
  const tmp = storeLayout(root).tmpDir + "/";
  if (!bundle.startsWith(tmp)) return false;
  const name = bundle.slice(tmp.length).split("/")[0] ?? "";
  return name !== "" && isStaleScratch(join(tmp, name), name, true);
}

export async function readDockerignore(contextDir: string, dockerfilePath: string): Promise<string | undefined> {
  // <Dockerfile>.dockerignore beside the Dockerfile wins over the context's .dockerignore.
  // Absent: try the next; a FIFO, directory or huge file is an error naming it (never a hang or an exhausted heap).
  for (const p of [`${dockerfilePath}.dockerignore`, join(contextDir, ".dockerignore")]) {
    const text = await readRegularFileIfExists(p, { maxBytes: MAX_DOCKERIGNORE_BYTES, what: ".dockerignore file" });
    if (text !== undefined) return text;
  }
  return undefined;
}
