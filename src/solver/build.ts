// The build: Dockerfile → stages → steps executed in dependency order (independent stages in parallel) → image.
// Each stage works on its own rootfs directory; every step that changes files yields one layer from its exact change list.
import { mkdir, stat } from "node:fs/promises";
import { join, resolve, relative, posix } from "node:path";
import { arch as hostArch, availableParallelism } from "node:os";
import pLimit from "p-limit";
import type { Engine } from "../engine.js";
import { BuildError, StoreError, TsbuildError, AbortError, throwIfAborted } from "../errors.js";
import { parseDockerfile } from "../frontend/parse.js";
import { runChecks } from "../frontend/checks.js";
import { findStage } from "../frontend/stages.js";
import { planBuild, resolveSourceRef, type BuildPlan, type PlannedStage, type SourceRef, type StageEdge } from "../frontend/plan.js";
import { decodeInstruction, type TypedInstruction } from "../frontend/instructions.js";
import { expandWord } from "../frontend/expand.js";
import { parseDockerignore } from "../frontend/dockerignore.js";
import type { Instruction, SourceRange, Stage, StagedDockerfile, Warning } from "../frontend/types.js";
import { MediaType, type ImageConfig, type HistoryEntry, type Digest } from "../image/types.js";
import { normalizeName } from "../image/reference.js";
import { openBuildContext, type BuildContext } from "../context/build-context.js";
import { applyCopy, ensureDir } from "../solver/copy.js";
import { lookupUser } from "../executor/user-lookup.js";
import { storeLayer } from "../layer/store-layer.js";
import { extractStoredLayers } from "../layer/extract-stored.js";
import type { LayerEntry } from "../layer/types.js";
import { applyMetaInPlace, type MetaChange } from "./meta.js";
import { imageConfigProblem } from "../image/config-check.js";
import { MAX_DOCKERFILE_BYTES, MAX_DOCKERIGNORE_BYTES, readRegularFileIfExists } from "../context/read-input.js";
import { HISTORY_COMMENT } from "./history.js";
import { DEFAULT_PATH, DEFAULT_SHELL, expansionEnv, getEnv, setEnv, type LayerRef, type StageState } from "./stage-state.js";
import { findImage, writeImage, type StoredImage } from "./image-writer.js";
import { executeRun, runArgv } from "./run-instruction.js";
import { parseMountSpec, type SecretSource } from "./mount-spec.js";
import { prepareRunMounts } from "./run-mounts.js";
import { selectExecutor, type ExecutorPreference } from "../executor/select-executor.js";
import { defaultResourceLimits } from "../executor/sandbox-policy.js";
import { sandboxHooks } from "../executor/sandbox-hooks.js";
import type { Executor } from "../executor/types.js";
import type { SnapshotterKind } from "../snapshot/run-step.js";
import { createHasher, type Hasher } from "../cache/hasher.js";
import { cacheKey, type KeyParts } from "../cache/keys.js";
import { getImageRecord, getStepRecord, putImageRecord, putStepRecord, type StepRecord } from "../cache/records.js";
import { explainMiss, loadExplain, saveExplain } from "../cache/explain.js";
import { openFileHashCache, type FileHashCache } from "../context/file-hash-cache.js";
import { digestContextSources } from "../context/source-digest.js";
import { materialize, releaseStageRootfs, stageRootfs, type SnapshotContext, type StageRootfs } from "./stage-rootfs.js";
import { acquireBuildLock, cleanStaleScratch, isProcessAlive, isStaleScratch } from "../store/locks.js";
import { ensureSnapshot } from "../snapshot/rootfs-snapshots.js";
import { reapOrphanContainers } from "../executor/orphan-containers.js";
import { detectCgroupLayout, reapStaleRunCgroups } from "../executor/cgroups.js";
import { ensureBlob, type CacheSource } from "../cache/cache-source.js";
import type { RegistryOptions } from "../registry/client.js";
import type { MountSpec } from "./mount-spec.js";

export interface BuildOptions {
  /** The build context directory. */
  contextDir: string;
  /** Path of the Dockerfile; defaults to <contextDir>/Dockerfile. */
  dockerfile?: string;
  /** Dockerfile text given directly (e.g. from stdin); `dockerfile` then only names it in messages. */
  dockerfileText?: string;
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
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
  /** Snapshots for RUN: overlayfs, or a copy of the rootfs (auto: overlay when it can be mounted). */
  snapshotter?: SnapshotterKind;
  /** Secrets for RUN --mount=type=secret, by id (from `--secret id=x,src=path|env=VAR`). */
  secrets?: Map<string, SecretSource>;
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
  signal?: AbortSignal;
}

/** How one cacheable step (FROM's layers aside: RUN, COPY, ADD, WORKDIR) went. */
export interface StepReport {
  node: string;
  name: string;
  stage: number;
  cached: boolean;
  durationMs: number;
  key: string;
  /** Why it missed (empty for hits). */
  reasons: string[];
}

export interface CacheReport {
  hits: number;
  misses: number;
  steps: StepReport[];
  /** Context files whose hash came from the stat cache / that were read. */
  contextFiles: { cached: number; hashed: number; bytes: number };
  /** Step records of every stage that was built, for --cache-to (mode=max) and of the target's chain (mode=min). */
  records: { stage: number; record: StepRecord }[];
  /** Stage indexes the target image's filesystem is built from (the target and its FROM-stage ancestors). */
  targetChain: number[];
  /** Key of the final-image record (reused when nothing changed, so the image id stays the same). */
  imageKey: string;
}

/** The built image lives in the store (the stage rootfs dirs are gone); exporters read it from there. */
export interface BuildResult extends StoredImage {
  /** Normalised names the image was tagged with. */
  tags: string[];
  warnings: Warning[];
  cache: CacheReport;
}

interface StageResult {
  state: StageState;
  fs: StageRootfs;
}

interface BuildRun {
  engine: Engine;
  staged: StagedDockerfile;
  plan: BuildPlan;
  escape: string;
  globalArgs: Map<string, string>;
  buildArgs: Map<string, string>;
  usedBuildArgs: Set<string>;
  context: BuildContext;
  workdir: string;
  /** mtime for directories a COPY/WORKDIR creates: SOURCE_DATE_EPOCH, else 0 (deterministic). */
  epoch: number;
  /** SOURCE_DATE_EPOCH when set: file mtimes RUN writes are clamped to it (never otherwise). */
  clampEpoch: number | undefined;
  created: string;
  platform: { os: string; architecture: string };
  signal: AbortSignal;
  stageRuns: Map<number, Promise<StageResult>>;
  imageRootfs: Map<string, Promise<string>>;
  limit: <T>(fn: () => Promise<T>) => Promise<T>;
  stepCounter: number;
  /** Chosen on the first RUN, so builds without RUN need no runtime installed. */
  executor: () => Promise<Executor>;
  /** Entitlements granted with --allow. */
  allow: Set<string>;
  snapshotter: SnapshotterKind;
  secrets: Map<string, SecretSource>;
  hasher: Hasher;
  /** Opened on the first COPY/ADD from the context; saved when the build ends. */
  hashCache: () => Promise<FileHashCache>;
  noCache: (stage: Stage) => boolean;
  /** Identifies "the same step" across builds, for explaining misses: context + Dockerfile. */
  explainScope: string;
  steps: StepReport[];
  records: { stage: number; record: StepRecord }[];
  cacheFrom: CacheSource[];
  pull: boolean;
  registry: RegistryOptions;
  resolved: Map<string, Promise<ResolvedBase>>;
  /** Kept snapshots of unpacked layers (overlay lowerdirs for the stage dirs). */
  snapshots: SnapshotContext;
  /** Every stage dir of this build, to unmount before the scratch dir goes. */
  rootfsList: StageRootfs[];
}

const GO_ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };

export function hostPlatform(): { os: string; architecture: string } {
  return { os: "linux", architecture: GO_ARCH[hostArch()] ?? hostArch() };
}

export async function build(engine: Engine, opts: BuildOptions): Promise<BuildResult> {
  const contextDir = resolve(opts.contextDir);
  const ctxStat = await stat(contextDir).catch(() => undefined);
  if (!ctxStat?.isDirectory())
    throw new BuildError("CONTEXT_NOT_FOUND", `build context ${opts.contextDir} is not a directory`, { hint: "pass the directory that holds your sources, e.g. `tsbuild -t name .`" });
  const dockerfilePath = opts.dockerfile ? resolve(opts.dockerfile) : join(contextDir, "Dockerfile");
  let text: string;
  if (opts.dockerfileText !== undefined) text = opts.dockerfileText;
  else {
    const read = await readRegularFileIfExists(dockerfilePath, { maxBytes: MAX_DOCKERFILE_BYTES, what: "Dockerfile", ...(opts.signal ? { signal: opts.signal } : {}) });
    if (read === undefined) throw new BuildError("DOCKERFILE_NOT_FOUND", `cannot read Dockerfile ${dockerfilePath}`, { hint: "use -f PATH to pick another Dockerfile" });
    text = read;
  }
  const displayName = opts.dockerfileDisplayName ?? (relative(process.cwd(), dockerfilePath).startsWith("..") ? dockerfilePath : relative(process.cwd(), dockerfilePath));
  const parsed = parseDockerfile(text, { file: displayName });
  // Build checks run on every build (BuildKit prints them too); they include the parser's own warnings.
  const checks = runChecks(parsed, { buildArgs: opts.buildArgs ?? {} });
  const warnings: Warning[] = checks.warnings.map((w) => ({ code: w.rule, message: w.message, ...(w.range ? { range: w.range } : {}) }));
  if (checks.errorOnWarnings && warnings.length > 0) {
    for (const w of warnings) engine.progress.emit({ kind: "warning", message: w.message, rule: w.code, ...(w.range ? { range: w.range } : {}) });
    throw new BuildError("CHECK_FAILED", `${warnings.length} build check warning${warnings.length === 1 ? "" : "s"} with # check=error=true`, {
      ...(warnings[0]?.range ? { range: warnings[0].range } : {}),
      hint: "fix the warnings above, or drop error=true from the # check= directive",
    });
  }

  const tags = (opts.tags ?? []).map((t) => normalizeName(t));
  // Every stage reference resolved, and the stages the target needs, before anything runs.
  const platform = hostPlatform();
  const plan = planBuild(parsed, { buildArgs: opts.buildArgs ?? {}, platform, ...(opts.target !== undefined ? { target: opts.target } : {}) });
  const staged = plan.staged;
  const target = plan.target.stage;

  const ignoreText = await readDockerignore(contextDir, dockerfilePath);
  const context = openBuildContext(contextDir, ignoreText ? parseDockerignore(ignoreText) : []);

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
    if (!findStage(staged, f)) throw new BuildError("UNKNOWN_TARGET", `--no-cache-filter ${f}: there is no stage named ${JSON.stringify(f)}`, { hint: `stages: ${staged.stages.map((s) => s.name ?? String(s.index)).join(", ")}` });
  // Shared with other builds; only a running prune excludes it. What killed builds left behind goes first.
  const lock = await acquireBuildLock(engine.root, opts.signal);
  let scratch: Awaited<ReturnType<Engine["scratch"]>>;
  try {
    await reapOrphanContainers((bundle) => orphanedIn(engine.root, bundle));
    await reapStaleRunCgroups(await detectCgroupLayout(), (pid) => isProcessAlive(pid));
    await cleanStaleScratch(engine.root);
    scratch = await engine.scratch("build");
  } catch (e) {
    await lock.release();
    throw e;
  }
  let hashCache: Promise<FileHashCache> | undefined;
  const hooks = sandboxHooks();
  const run: BuildRun = {
    engine,
    staged,
    plan,
    escape: parsed.directives.escape,
    globalArgs: plan.globalArgs,
    buildArgs,
    usedBuildArgs: new Set(["SOURCE_DATE_EPOCH", ...plan.usedBuildArgs]),
    context,
    workdir: scratch.path,
    epoch,
    clampEpoch: epochValue,
    created,
    platform,
    signal: controller.signal,
    stageRuns: new Map(),
    imageRootfs: new Map(),
    limit: pLimit(Math.max(1, opts.jobs ?? availableParallelism())),
    stepCounter: 0,
    executor: once(() =>
      selectExecutor(opts.executor ?? "auto", {
        limits: { ...defaultResourceLimits(), ...(opts.pidsLimit !== undefined ? { pids: opts.pidsLimit } : {}) },
        hooks,
      }),
    ),
    allow: new Set(opts.allow ?? []),
    snapshotter: opts.snapshotter ?? "auto",
    secrets: opts.secrets ?? new Map(),
    hasher,
    hashCache: () => (hashCache ??= openFileHashCache(engine.root, context.root, hasher)),
    noCache: (stage) => opts.noCache === true || [...noCacheStages].some((f) => findStage(staged, f)?.index === stage.index),
    explainScope: `${context.root}\u0000${opts.dockerfileText !== undefined ? displayName : dockerfilePath}`,
    steps: [],
    records: [],
    cacheFrom: opts.cacheFrom ?? [],
    pull: opts.pull ?? false,
    registry: opts.registry ?? {},
    resolved: new Map(),
    snapshots: { root: engine.root, enabled: (opts.snapshotter ?? "auto") !== "copy" },
    rootfsList: [],
  };
  try {
    for (const name of PROXY_ARGS) if (buildArgs.has(name)) run.usedBuildArgs.add(name);
    let result: StageResult;
    try {
      result = await runStage(run, target);
    } catch (e) {
      controller.abort();
      // Let the other stages notice the abort before the scratch dir goes.
      await Promise.allSettled(run.stageRuns.values());
      if (opts.signal?.aborted) throw new AbortError();
      throw e;
    }
    const finalConfig = orderConfig({ ...result.state.config, created: run.created });
    const imageKey = finalImageKey(hasher, finalConfig, result.state.layers);
    const stored = await reuseOrWriteImage(run, imageKey, finalConfig, result.state.layers);
    for (const t of tags) await engine.images.set(t, stored.manifest);
    for (const name of buildArgs.keys())
      if (!run.usedBuildArgs.has(name)) warnings.push({ code: "UnusedBuildArg", message: `build arg ${name} was not consumed by any instruction` });
    for (const w of warnings) engine.progress.emit({ kind: "warning", message: w.message, rule: w.code, ...(w.range ? { range: w.range } : {}) });
    const hits = run.steps.filter((s) => s.cached).length;
    return {
      ...stored,
      tags,
      warnings,
      cache: {
        hits,
        misses: run.steps.length - hits,
        steps: run.steps,
        contextFiles: hashCache ? { ...(await hashCache).counters } : { cached: 0, hashed: 0, bytes: 0 },
        records: run.records,
        targetChain: fromChain(run, target),
        imageKey,
      },
    };
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    // Hashes of files read before a failure are still right; keeping them makes the retry fast.
    if (hashCache) await (await hashCache).save().catch(() => undefined);
    // Overlay stage dirs first: the scratch dir must not be removed through a mount.
    for (const fs of run.rootfsList) await releaseStageRootfs(fs).catch(() => undefined);
    await hooks.close();
    await scratch.release();
    await lock.release();
  }
}

/** A container bundle inside a scratch dir of this store whose build is gone. */
async function orphanedIn(root: string, bundle: string): Promise<boolean> {
  const tmp = join(root, "tmp") + "/";
  if (!bundle.startsWith(tmp)) return false;
  const name = bundle.slice(tmp.length).split("/")[0] ?? "";
  return name !== "" && isStaleScratch(join(tmp, name), name, true);
}

/** The stage and the stages it is built FROM (not those it only COPYs from): what the image's layers come from. */
function fromChain(run: BuildRun, stage: Stage): number[] {
  const out: number[] = [];
  let s: Stage | undefined = stage;
  while (s) {
    out.push(s.index);
    const base: SourceRef = (run.plan.stages[s.index] as PlannedStage).base;
    s = base.kind === "stage" ? run.staged.stages[base.index] : undefined;
  }
  return out;
}

/** Identity of a final image apart from its timestamps: equal keys mean the earlier image can be reused as is. */
function finalImageKey(hasher: Hasher, config: ImageConfig, layers: LayerRef[]): string {
  const { created: _created, history, ...rest } = config;
  const timeless = { ...rest, history: (history ?? []).map(({ created: _c, ...h }) => h) };
  return hasher.key(JSON.stringify({ config: timeless, layers: layers.map((l) => l.diffId) }));
}

/** A rebuild with nothing changed gives the same image (same id and digest), as BuildKit does. */
async function reuseOrWriteImage(run: BuildRun, key: string, config: ImageConfig, layers: LayerRef[]): Promise<StoredImage> {
  const content = run.engine.content;
  const record = await getImageRecord(run.engine.root, key);
  if (record) {
    try {
      const manifest = await content.readJson<{ config: { digest: Digest } }>(record.manifest.digest);
      if (await content.has(manifest.config.digest)) return { manifest: record.manifest, config: manifest.config.digest };
    } catch {
      /* manifest pruned or damaged: write the image again */
    }
  }
  for (const source of run.cacheFrom) {
    const imported = source.image(key);
    if (!imported) continue;
    try {
      await ensureBlob(content, source, imported.manifest, run.signal);
      await ensureBlob(content, source, imported.config, run.signal);
    } catch (e) {
      throwIfAborted(run.signal);
      run.engine.progress.emit({ kind: "warning", message: `cache ${source.name}: cannot use image ${imported.manifest.digest}: ${(e as Error).message}` });
      continue;
    }
    await putImageRecord(run.engine.root, key, imported.manifest);
    return { manifest: imported.manifest, config: imported.config.digest };
  }
  const stored = await writeImage(content, config, layers);
  await putImageRecord(run.engine.root, key, stored.manifest);
  return stored;
}

/** Docker's key order for image configs, so digests do not depend on how the config was assembled. */
function orderConfig(c: ImageConfig): ImageConfig {
  const { created, author, architecture, os, variant, config, rootfs, history, ...rest } = c;
  return {
    ...(created !== undefined ? { created } : {}),
    ...(author !== undefined ? { author } : {}),
    architecture,
    os,
    ...(variant !== undefined ? { variant } : {}),
    config,
    rootfs,
    ...(history !== undefined ? { history } : {}),
    ...rest,
  };
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

async function readDockerignore(contextDir: string, dockerfilePath: string): Promise<string | undefined> {
  // <Dockerfile>.dockerignore beside the Dockerfile wins over the context's .dockerignore.
  // Absent: try the next; a FIFO, directory or huge file is an error naming it (never a hang or an exhausted heap).
  for (const p of [`${dockerfilePath}.dockerignore`, join(contextDir, ".dockerignore")]) {
    const text = await readRegularFileIfExists(p, { maxBytes: MAX_DOCKERIGNORE_BYTES, what: ".dockerignore file" });
    if (text !== undefined) return text;
  }
  return undefined;
}

function expand(run: BuildRun, word: string, env: Map<string, string>, range: SourceRange): string {
  try {
    return expandWord(word, env, { escape: run.escape, range });
  } catch (e) {
    if (e instanceof TsbuildError && !e.range) throw new BuildError(e.code, e.message, { range, cause: e });
    throw e;
  }
}

/** Proxy variables pass from --build-arg into RUN without an ARG line, as in Docker (and stay out of history). */
export const PROXY_ARGS = ["HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"].flatMap((n) => [n, n.toLowerCase()]);

function runStage(run: BuildRun, stage: Stage): Promise<StageResult> {
  let p = run.stageRuns.get(stage.index);
  if (!p) {
    p = executeStage(run, stage);
    run.stageRuns.set(stage.index, p);
  }
  return p;
}

async function executeStage(run: BuildRun, stage: Stage): Promise<StageResult> {
  // Every stage the plan says this one reads is built first. No --jobs slot is held while waiting: slots are taken
  // only around a step's execution (cachedStep), so a stage can never wait on a slot it holds itself.
  const planned = run.plan.stages[stage.index] as PlannedStage;
  await Promise.all(planned.edges.map((e) => runStage(run, run.staged.stages[e.index] as Stage)));
  throwIfAborted(run.signal);
  const baseStage = planned.base.kind === "stage" ? run.staged.stages[planned.base.index] : undefined;
  const fs = stageRootfs(join(run.workdir, `stage-${stage.index}`));
  run.rootfsList.push(fs);
  const state = await prepareBase(run, stage, planned.baseName, baseStage);
  // The base image's ONBUILD triggers run right after FROM, and are not inherited further (Docker).
  const triggers = onbuildTriggers(state.config.config.OnBuild ?? [], stage);
  delete state.config.config.OnBuild;
  for (const [i, instr] of [...triggers, ...stage.instructions].entries()) {
    throwIfAborted(run.signal);
    const position = i < triggers.length ? `onbuild-${i}` : String(i - triggers.length);
    await runStep(run, stage, state, fs, instr, position);
  }
  return { state, fs };
}

/** The finished stage's rootfs on disk (materialised on first use). */
async function stageDir(run: BuildRun, stage: Stage): Promise<string> {
  const r = await runStage(run, stage);
  return materialize(r.fs, r.state.layers, r.state.key, run.engine.content, run.snapshots, run.signal);
}

/** Parse ONBUILD trigger strings as instructions positioned at the FROM line that inherits them. */
function onbuildTriggers(exprs: string[], stage: Stage): Instruction[] {
  if (exprs.length === 0) return [];
  const parsed = parseDockerfile(exprs.join("\n") + "\n", { file: `${stage.from.range.file} (ONBUILD of ${stage.base})` });
  return parsed.instructions.map((i) => ({ ...i, range: stage.from.range }));
}

/** The stage a reference expanded at run time names (RUN --mount from=$VAR), or undefined for an image. */
function stageRef(run: BuildRun, ref: string, current: Stage, via: StageEdge["via"], range: SourceRange): Stage | undefined {
  const r = resolveSourceRef(run.staged, ref, current, via, range);
  if (r.kind !== "stage") return undefined;
  // A reference only the run-time value reveals must not close a loop either (it would wait on itself).
  if (reaches(run.plan, r.index, current.index))
    throw new BuildError("CIRCULAR_DEPENDENCY", `circular dependency detected on stage: ${current.name ?? `stage-${current.index}`}`, { range });
  return run.staged.stages[r.index];
}

/** Whether stage `from` is, or reads (directly or not), stage `to`. */
function reaches(plan: BuildPlan, from: number, to: number): boolean {
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
function copySource(run: BuildRun, stage: Stage, instr: Instruction): SourceRef | undefined {
  return (run.plan.stages[stage.index] as PlannedStage).copyFrom.get(instr);
}

function emptyConfig(run: BuildRun): ImageConfig {
  return {
    architecture: run.platform.architecture,
    os: run.platform.os,
    config: { Env: [`PATH=${DEFAULT_PATH}`] },
    rootfs: { type: "layers", diff_ids: [] },
    history: [],
  };
}

async function prepareBase(run: BuildRun, stage: Stage, baseName: string, baseStage: Stage | undefined): Promise<StageState> {
  const node = `stage-${stage.index}-from`;
  const label = `[${stagePrefix(run, stage)}1/${stage.instructions.length + 1}] FROM ${baseName}`;
  const started = Date.now();
  run.engine.progress.emit({ kind: "step-start", node, name: label, range: stage.from.range, cached: false });
  let state: StageState;
  const platform = `${run.platform.os}/${run.platform.architecture}`;
  // The filesystem is not unpacked here: the first step that must run (or a stage reading this one) does it.
  if (baseStage) {
    const base = await runStage(run, baseStage);
    state = { config: structuredClone(base.state.config), layers: [...base.state.layers], args: new Map(), cmdSet: false, key: base.state.key };
  } else if (baseName.toLowerCase() === "scratch") {
    state = { config: emptyConfig(run), layers: [], args: new Map(), cmdSet: false, key: cacheKey(run.hasher, undefined, { base: "scratch", platform }).digest };
  } else {
    const image = await resolveImage(run, baseName, stage.from.range);
    // A stored config may predate load's checks (or the store was edited): its field types are checked before use.
    const problem = imageConfigProblem(image.config);
    if (problem) throw new StoreError("BAD_CONFIG", `the config of base image ${baseName} (${image.id}) is malformed: ${problem}`, { range: stage.from.range, hint: "remove the image (`tsbuild rmi`) and load or pull it again" });
    const config = structuredClone(image.config);
    config.history ??= [];
    config.config ??= {};
    if (getEnv(config, "PATH") === undefined) config.config.Env = setEnv(config.config.Env, "PATH", DEFAULT_PATH);
    state = { config, layers: [...image.layers], args: new Map(), cmdSet: false, key: baseKey(run, image.id) };
  }
  // The new image gets this build's platform and creation time; its history and layers carry over.
  delete state.config.created;
  run.engine.progress.emit({ kind: "step-end", node, durationMs: Date.now() - started });
  return state;
}

/** The first key of a chain that starts FROM an image: its id (config digest) on this build's platform. */
function baseKey(run: BuildRun, imageId: Digest): string {
  return cacheKey(run.hasher, undefined, { base: imageId, platform: `${run.platform.os}/${run.platform.architecture}` }).digest;
}

type ResolvedBase = { id: Digest; config: ImageConfig; layers: LayerRef[] };

/** An image named by FROM or --from: the local store first (unless --pull), then the registry; once per build. */
function resolveImage(run: BuildRun, name: string, range: SourceRange): Promise<ResolvedBase> {
  let p = run.resolved.get(name);
  if (!p) {
    p = lookupOrPull(run, name, range);
    run.resolved.set(name, p);
  }
  return p;
}

async function lookupOrPull(run: BuildRun, name: string, range: SourceRange): Promise<ResolvedBase> {
  const find = async () => {
    try {
      return await findImage(run.engine.content, run.engine.images, name);
    } catch (e) {
      if (e instanceof TsbuildError) throw new BuildError(e.code, e.message, { range, hint: e.hint, cause: e });
      throw e;
    }
  };
  // A digest reference names content: never re-resolved, so a local copy is always right.
  let found = run.pull && !name.includes("@") ? undefined : await find();
  if (!found) {
    try {
      const { pullImage } = await import("../registry/pull.js");
      await pullImage(run.engine, name, { ...run.registry, signal: run.signal });
    } catch (e) {
      throwIfAborted(run.signal);
      const why = e instanceof Error ? e.message : String(e);
      throw new BuildError("IMAGE_NOT_FOUND", `base image ${name} is not in the local store, and pulling it failed: ${why}`, {
        range,
        hint: e instanceof TsbuildError && e.hint ? e.hint : "import it with `tsbuild load -i IMAGE.tar`, or check the name and your registry access (`tsbuild login HOST`)",
        cause: e,
      });
    }
    found = await find();
    if (!found) throw new BuildError("IMAGE_NOT_FOUND", `base image ${name} was pulled but cannot be found in the store`, { range });
  }
  return {
    id: found.manifest.config.digest,
    config: found.config,
    layers: found.manifest.layers.map((l) => ({ diffId: l.digest, size: l.size })),
  };
}

/** The rootfs of an image named in COPY --from=<image>, materialised once per build. */
function imageRootfs(run: BuildRun, name: string, range: SourceRange): Promise<string> {
  let p = run.imageRootfs.get(name);
  if (!p) {
    p = (async () => {
      const image = await resolveImage(run, name, range);
      // COPY only reads it: the kept snapshot of the image (the one a FROM of it would use) serves as is.
      if (run.snapshots.enabled) return ensureSnapshot(run.engine.root, baseKey(run, image.id), image.layers, run.engine.content, run.signal);
      const dir = join(run.workdir, `image-${run.imageRootfs.size}`);
      await mkdir(dir, { recursive: true });
      await extractStoredLayers(run.engine.content, image.layers, dir, run.signal);
      return dir;
    })();
    run.imageRootfs.set(name, p);
  }
  return p;
}

/** BuildKit's step prefix: "" for one stage, else the stage name or stage-N. */
function stagePrefix(run: BuildRun, stage: Stage): string {
  return run.staged.stages.length === 1 ? "" : `${stage.name ?? `stage-${stage.index}`} `;
}

function stepLabel(run: BuildRun, stage: Stage, instr: Instruction, position: string): string {
  // From the position, not indexOf (which made 50,000 ONBUILD triggers quadratic): an ONBUILD trigger is "onbuild-N".
  const pos = position.startsWith("onbuild-") ? 1 : Number(position) + 2;
  // One line: continuations collapsed, heredoc bodies left out.
  const firstLines = instr.heredocs.length ? instr.original.split("\n")[0] ?? "" : instr.original;
  const text = firstLines.replace(/[\\`]?[ \t]*\n[ \t]*/g, " ").trim();
  if (pos === 1) return `[${stagePrefix(run, stage)}ONBUILD] ${text}`;
  return `[${stagePrefix(run, stage)}${pos}/${stage.instructions.length + 1}] ${text}`;
}

type LayerKind = Extract<TypedInstruction, { kind: "RUN" | "COPY" | "ADD" | "WORKDIR" }>;

function isLayerStep(t: TypedInstruction): t is LayerKind {
  return t.kind === "RUN" || t.kind === "COPY" || t.kind === "ADD" || t.kind === "WORKDIR";
}

async function runStep(run: BuildRun, stage: Stage, state: StageState, fs: StageRootfs, instr: Instruction, position: string): Promise<void> {
  const node = `stage-${stage.index}-step-${++run.stepCounter}`;
  const name = stepLabel(run, stage, instr, position);
  const started = Date.now();
  let announced = false;
  const announce = (cached: boolean) => {
    announced = true;
    run.engine.progress.emit({ kind: "step-start", node, name, range: instr.range, cached });
  };
  try {
    const t = decodeInstruction(instr);
    if (isLayerStep(t)) await cachedStep(run, stage, state, fs, t, { node, name, position, started, announce });
    else {
      announce(false);
      await dispatch(run, state, t);
    }
    run.engine.progress.emit({ kind: "step-end", node, durationMs: Date.now() - started });
  } catch (e) {
    const err = e instanceof TsbuildError && !e.range ? new BuildError(e.code, e.message, { range: instr.range, hint: e.hint, cause: e }) : e;
    if (!announced) announce(false);
    run.engine.progress.emit({ kind: "step-end", node, durationMs: Date.now() - started, error: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}

/** A step that may change files: how it is keyed, kept apart from how it runs (only on a miss). */
interface LayerStepPlan {
  parts: KeyParts;
  /** Per files-part, the selected paths (to name changed files when explaining a miss). */
  files?: Record<string, Record<string, string>>;
  createdBy: string;
  /** Config changes the step makes whether it runs or hits (WORKDIR). */
  effect?: () => void;
  /** Runs the step on the materialised rootfs and returns the exact changes. */
  execute(rootfs: string): Promise<LayerEntry[]>;
}

/** A step record usable now: present, undamaged, and its layer still in the store (else it is a miss, never an error). */
async function findStepRecord(run: BuildRun, key: string): Promise<StepRecord | undefined> {
  const r = await getStepRecord(run.engine.root, key);
  if (r && (!r.layer || (await run.engine.content.has(r.layer.diffId)))) return r;
  for (const source of run.cacheFrom) {
    const imported = source.step(key);
    if (!imported) continue;
    try {
      if (imported.layer) await ensureBlob(run.engine.content, source, { mediaType: MediaType.OciLayer, digest: imported.layer.diffId, size: imported.layer.size }, run.signal);
    } catch (e) {
      throwIfAborted(run.signal);
      // A cache that cannot deliver is a miss, never a failed build.
      run.engine.progress.emit({ kind: "warning", message: `cache ${source.name}: cannot use layer ${imported.layer?.diffId}: ${(e as Error).message}` });
      continue;
    }
    await putStepRecord(run.engine.root, imported);
    return imported;
  }
  return undefined;
}

async function cachedStep(
  run: BuildRun,
  stage: Stage,
  state: StageState,
  fs: StageRootfs,
  t: LayerKind,
  step: { node: string; name: string; position: string; started: number; announce(cached: boolean): void },
): Promise<void> {
  const plan = await planLayerStep(run, stage, state, t, step.node);
  const key = cacheKey(run.hasher, state.key, plan.parts);
  const useCache = !run.noCache(stage);
  let record = useCache ? await findStepRecord(run, key.digest) : undefined;
  const hit = record !== undefined;
  step.announce(hit);
  let reasons: string[] = [];
  if (!record) {
    const root = run.engine.root;
    const stepId = run.hasher.key(`${run.explainScope}\u0000${stage.name ?? stage.index}\u0000${step.position}`);
    // The parent key is part of the digest already; the record keeps it so an earlier change can be named.
    const now = { parts: { ...key.parts, parent: state.key }, ...(plan.files ? { files: plan.files } : {}) };
    reasons = useCache ? explainMiss(await loadExplain(root, stepId), now) : ["the cache is disabled for this step (--no-cache or --no-cache-filter)"];
    run.engine.progress.emit({ kind: "cache-miss", node: step.node, reasons });
    // A --jobs slot only while the step executes: everything it waits for (stages it reads, base images) was
    // awaited while its key was computed, so a slot holder never waits on work that needs a slot.
    const entries = await run.limit(async () => {
      throwIfAborted(run.signal);
      const dir = await materialize(fs, state.layers, state.key, run.engine.content, run.snapshots, run.signal);
      return plan.execute(dir);
    });
    const layer = entries.length ? await storeLayer(run.engine.content, entries, { signal: run.signal }) : null;
    record = { v: 1, key: key.digest, layer: layer ? { diffId: layer.diffId, size: layer.size } : null, created: new Date().toISOString() };
    await putStepRecord(root, record);
    await saveExplain(root, stepId, { v: 1, key: key.digest, ...now });
    // The directory already holds this step's changes.
    if (layer) fs.applied = state.layers.length + 1;
  }
  plan.effect?.();
  if (record.layer) {
    state.layers.push({ diffId: record.layer.diffId, size: record.layer.size });
    state.config.rootfs.diff_ids.push(record.layer.diffId);
  }
  addHistory(run, state, plan.createdBy, record.layer === null);
  state.key = key.digest;
  run.records.push({ stage: stage.index, record });
  run.steps.push({ node: step.node, name: step.name, stage: stage.index, cached: hit, durationMs: Date.now() - step.started, key: key.digest, reasons });
}

function addHistory(run: BuildRun, state: StageState, createdBy: string, emptyLayer: boolean): void {
  const h: HistoryEntry = { created: run.created, created_by: createdBy, comment: HISTORY_COMMENT };
  if (emptyLayer) h.empty_layer = true;
  (state.config.history ??= []).push(h);
}

function meta(run: BuildRun, state: StageState, change: MetaChange, range: SourceRange): void {
  // In place: the stage owns its config, and a copy per instruction made long Dockerfiles quadratic.
  const r = applyMetaInPlace(state.config, change, state.cmdSet, range);
  if (r.cmdSet) state.cmdSet = true;
  addHistory(run, state, r.createdBy, true);
}

/** Config-only instructions: they change the image config and history, never files, and are not cached. */
async function dispatch(run: BuildRun, state: StageState, t: Exclude<TypedInstruction, LayerKind>): Promise<void> {
  const range = t.src.range;
  const env = () => expansionEnv(state);
  const x = (w: string) => expand(run, w, env(), range);
  switch (t.kind) {
    case "ENV": {
      // Every substitution in one ENV sees the values from before the instruction.
      const e = env();
      meta(run, state, { kind: "ENV", pairs: t.pairs.map((p) => ({ key: expand(run, p.key, e, range), value: expand(run, p.value, e, range) })) }, range);
      return;
    }
    case "LABEL": {
      const e = env();
      meta(run, state, { kind: "LABEL", pairs: t.pairs.map((p) => ({ key: expand(run, p.key, e, range), value: expand(run, p.value, e, range) })) }, range);
      return;
    }
    case "ARG": {
      const out: { name: string; value?: string }[] = [];
      for (const a of t.args) {
        let value: string | undefined;
        const cli = run.buildArgs.get(a.name);
        if (cli !== undefined) {
          value = cli;
          run.usedBuildArgs.add(a.name);
        } else if (a.default !== undefined) value = x(a.default);
        else value = run.globalArgs.get(a.name);
        if (value !== undefined) state.args.set(a.name, value);
        else state.args.set(a.name, "");
        out.push(a.default === undefined ? { name: a.name } : { name: a.name, value: value ?? "" });
      }
      meta(run, state, { kind: "ARG", args: out }, range);
      return;
    }
    case "MAINTAINER":
      meta(run, state, { kind: "MAINTAINER", name: t.name }, range);
      return;
    case "USER":
      meta(run, state, { kind: "USER", user: x(t.user) }, range);
      return;
    case "EXPOSE":
      meta(run, state, { kind: "EXPOSE", ports: t.ports.map(x) }, range);
      return;
    case "VOLUME":
      meta(run, state, { kind: "VOLUME", paths: t.paths.map(x) }, range);
      return;
    case "STOPSIGNAL":
      meta(run, state, { kind: "STOPSIGNAL", signal: x(t.signal) }, range);
      return;
    case "CMD":
    case "ENTRYPOINT":
      meta(run, state, { kind: t.kind, json: t.json, args: t.args }, range);
      return;
    case "SHELL":
      meta(run, state, { kind: "SHELL", args: t.args }, range);
      return;
    case "ONBUILD":
      meta(run, state, { kind: "ONBUILD", expression: t.expression }, range);
      return;
    case "HEALTHCHECK": {
      if (t.none) {
        meta(run, state, { kind: "HEALTHCHECK", health: { Test: ["NONE"] }, createdBy: "HEALTHCHECK NONE" }, range);
        return;
      }
      const test = t.json ? t.test : ["CMD-SHELL", t.test.join(" ")];
      const health: ImageConfig["config"]["Healthcheck"] = { Test: test };
      if (t.interval !== undefined) health.Interval = t.interval;
      if (t.timeout !== undefined) health.Timeout = t.timeout;
      if (t.startPeriod !== undefined) health.StartPeriod = t.startPeriod;
      if (t.startInterval !== undefined) health.StartInterval = t.startInterval;
      if (t.retries !== undefined) health.Retries = t.retries;
      meta(run, state, { kind: "HEALTHCHECK", health, createdBy: `HEALTHCHECK ${t.src.original.replace(/^\s*healthcheck\s+/i, "")}` }, range);
      return;
    }
    case "FROM":
      throw new BuildError("INTERNAL", "FROM inside a stage", { range });
  }
}


/** The key parts of a RUN's environment, by variable: ENV wins over ARG as in runEnv (proxy args stay out, as in Docker). */
function envParts(state: StageState): KeyParts {
  const parts: KeyParts = {};
  const env = new Set<string>();
  for (const kv of state.config.config.Env ?? []) {
    const eq = kv.indexOf("=");
    const k = eq < 0 ? kv : kv.slice(0, eq);
    env.add(k);
    parts[`env:${k}`] = eq < 0 ? "" : kv.slice(eq + 1);
  }
  for (const [k, v] of state.args) if (!env.has(k)) parts[`arg:${k}`] = v;
  return parts;
}

async function planLayerStep(run: BuildRun, stage: Stage, state: StageState, t: LayerKind, node: string): Promise<LayerStepPlan> {
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
        effect: () => {
          state.config.config.WorkingDir = path;
        },
        async execute(rootfs) {
          const owner = user ? await lookupUser(rootfs, user) : undefined;
          return ensureDir(rootfs, path, owner ? { uid: owner.uid, gid: owner.gid } : undefined, run.epoch);
        },
      };
    }
    case "COPY":
    case "ADD": {
      const unsupported = [
        t.link && "--link",
        t.parents && "--parents",
        t.exclude.length > 0 && "--exclude",
        t.checksum !== undefined && "--checksum",
        t.unpack !== undefined && "--unpack",
        t.keepGitDir && "--keep-git-dir",
      ].filter(Boolean);
      if (unsupported.length)
        throw new BuildError("UNSUPPORTED", `${t.kind} ${unsupported.join(", ")} is not supported yet`, { range, hint: "remove the flag; tsbuild will support it in a later version" });
      const e = env();
      const sources = t.sources.map((s) => expand(run, s, e, range));
      const dest = expand(run, t.dest, e, range);
      const chown = t.chown !== undefined ? expand(run, t.chown, e, range) : undefined;
      const chmod = t.chmod !== undefined ? expand(run, t.chmod, e, range) : undefined;
      const heredocs = t.heredocs.map((h) => ({ name: h.name, content: h.expand ? expand(run, h.content, e, range) : h.content }));
      const workdir = state.config.config.WorkingDir || "/";
      const parts: KeyParts = {
        instruction: `${t.kind}${chown !== undefined ? ` --chown=${chown}` : ""}${chmod !== undefined ? ` --chmod=${chmod}` : ""} ${[...sources, dest].join(" ")}`,
        workdir,
        ...epochParts,
      };
      if (heredocs.length) parts["heredocs"] = run.hasher.key(JSON.stringify(heredocs));
      let files: Record<string, Record<string, string>> | undefined;
      let source: () => Promise<Parameters<typeof applyCopy>[0]["from"]>;
      const from = t.from !== undefined ? copySource(run, stage, t.src) : undefined;
      if (from !== undefined && from.kind !== "scratch") {
        const name = from.kind === "image" ? from.name : "";
        const dep = from.kind === "stage" ? run.staged.stages[from.index] : undefined;
        if (dep) {
          // A finished stage's files are determined by its key.
          parts["from"] = `stage ${dep.name ?? dep.index}: ${(await runStage(run, dep)).state.key}`;
          source = async () => ({ kind: "rootfs", dir: await stageDir(run, dep) });
        } else {
          parts["from"] = `image ${name}: ${(await resolveImage(run, name, range)).id}`;
          source = async () => ({ kind: "rootfs", dir: await imageRootfs(run, name, range) });
        }
      } else {
        const digest = await digestContextSources(run.context, sources, await run.hashCache(), run.hasher, { range, signal: run.signal });
        parts["files"] = digest.digest;
        files = { files: digest.files };
        // The copy checks it writes exactly what this key covers (CONTEXT_CHANGED otherwise).
        source = async () => ({ kind: "context", context: run.context, keyed: digest.ledger });
      }
      const flags = t.src.flags.length ? `${t.src.flags.join(" ")} ` : "";
      return {
        parts,
        ...(files ? { files } : {}),
        createdBy: `${t.kind} ${flags}${t.sources.join(" ")} ${t.dest} # buildkit`,
        async execute(rootfs) {
          return applyCopy({
            rootfs,
            sources,
            dest,
            workdir,
            from: await source(),
            ...(chown !== undefined ? { chown } : {}),
            ...(chmod !== undefined ? { chmod } : {}),
            isAdd: t.kind === "ADD",
            heredocs,
            epoch: run.epoch,
            // SOURCE_DATE_EPOCH clamps every layer's timestamps, also of files an earlier RUN wrote (COPY --from).
            clampMtime: run.clampEpoch !== undefined,
            range,
            signal: run.signal,
          });
        },
      };
    }
    case "RUN": {
      if (t.security !== undefined && t.security !== "sandbox")
        throw new BuildError("UNSUPPORTED", `RUN --security=${t.security} is not supported`, { range, hint: "tsbuild runs every step sandboxed" });
      const network = t.network ?? "default";
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
      const input = {
        json: t.json,
        args: t.json ? t.command : [t.script],
        heredocs: t.heredocs,
        network,
        extraEnv: PROXY_ARGS.flatMap((n) => (run.buildArgs.has(n) ? [`${n}=${run.buildArgs.get(n)}`] : [])),
      } as const;
      const { argv, script } = runArgv(state, { ...input, heredocs: [...input.heredocs] });
      const parts: KeyParts = {
        instruction: `RUN ${JSON.stringify(argv)}`,
        ...envParts(state),
        user: state.config.config.User ?? "",
        workdir: state.config.config.WorkingDir || "/",
        network,
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
      const flags = t.mounts.length ? `${t.src.flags.filter((f) => f.startsWith("--mount=")).join(" ")} ` : "";
      return {
        parts,
        ...(Object.keys(files).length ? { files } : {}),
        createdBy: `RUN ${flags}${t.json ? t.command.join(" ") : [...(state.config.config.Shell ?? DEFAULT_SHELL), t.script].join(" ")} # buildkit`,
        async execute(rootfs) {
          const mounts = await prepareRunMounts(specs, {
            storeRoot: run.engine.root,
            // A sibling of executeRun's own scratch dir, which it removes itself.
            scratch: join(run.workdir, `mounts-${node}`),
            // The whole BuildContext: a bind mount exposes only the files .dockerignore keeps (its key covers exactly those).
            context: run.context,
            stageRootfs: async (name) => {
              const dep = stageRef(run, name, stage, "--mount from", range);
              return dep ? stageDir(run, dep) : undefined;
            },
            secrets: run.secrets,
            signal: run.signal,
            range,
            workdir: state.config.config.WorkingDir || "/",
          });
          try {
            return await executeRun(
              state,
              { ...input, heredocs: [...input.heredocs], mounts: mounts.mounts, secretEnv: mounts.env },
              {
                rootfs,
                scratch: join(run.workdir, `run-${node}`),
                executor: await run.executor(),
                snapshotter: run.snapshotter,
                progress: run.engine.progress,
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

/**
 * What a RUN mount reads that can change its result: a bind's files (context content, or the stage's key).
 * Cache mounts, tmpfs and secrets do not count: their contents are not part of the step's identity.
 */
async function mountSourcePart(run: BuildRun, stage: Stage, spec: MountSpec, range: SourceRange): Promise<{ digest: string; files?: Record<string, string> } | undefined> {
  if (spec.type !== "bind") return undefined;
  if (spec.from !== undefined) {
    const dep = stageRef(run, spec.from, stage, "--mount from", range);
    // Not a stage: run-mounts reports it (images as bind sources are not supported).
    return { digest: dep ? `stage ${dep.name ?? dep.index}: ${(await runStage(run, dep)).state.key}` : `unknown ${spec.from}` };
  }
  const d = await digestContextSources(run.context, [spec.source ?? "/"], await run.hashCache(), run.hasher, { range, signal: run.signal });
  return { digest: d.digest, files: d.files };
}
