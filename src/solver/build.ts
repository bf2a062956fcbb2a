// The build: Dockerfile → stages → steps executed in dependency order (independent stages in parallel) → image.
// Each stage works on its own rootfs directory; every step that changes files yields one layer from its exact change list.
import { readFile, mkdir, cp, stat } from "node:fs/promises";
import { createReadStream } from "node:fs";
import { join, resolve, relative, posix } from "node:path";
import { arch as hostArch, availableParallelism } from "node:os";
import pLimit from "p-limit";
import type { Engine } from "../engine.js";
import { BuildError, TsbuildError, AbortError, throwIfAborted } from "../errors.js";
import { parseDockerfile } from "../frontend/parse.js";
import { runChecks } from "../frontend/checks.js";
import { splitStages, findStage, stageRefs } from "../frontend/stages.js";
import { decodeInstruction, type TypedInstruction } from "../frontend/instructions.js";
import { expandWord } from "../frontend/expand.js";
import { parseDockerignore } from "../frontend/dockerignore.js";
import type { Instruction, SourceRange, Stage, StagedDockerfile, Warning } from "../frontend/types.js";
import type { ImageConfig, HistoryEntry } from "../image/types.js";
import { normalizeName } from "../image/reference.js";
import { openBuildContext, type BuildContext } from "../context/build-context.js";
import { applyCopy, ensureDir } from "../solver/copy.js";
import { lookupUser } from "../executor/user-lookup.js";
import { storeLayer } from "../layer/store-layer.js";
import { extractLayer } from "../layer/extract.js";
import type { LayerEntry } from "../layer/types.js";
import { applyMeta, type MetaChange } from "./meta.js";
import { HISTORY_COMMENT } from "./history.js";
import { DEFAULT_PATH, DEFAULT_SHELL, expansionEnv, getEnv, setEnv, type LayerRef, type StageState } from "./stage-state.js";
import { findImage, writeImage, type StoredImage } from "./image-writer.js";
import { executeRun } from "./run-instruction.js";
import { parseMountSpec, type SecretSource } from "./mount-spec.js";
import { prepareRunMounts } from "./run-mounts.js";
import { selectExecutor, type ExecutorPreference } from "../executor/select-executor.js";
import type { Executor } from "../executor/types.js";
import type { SnapshotterKind } from "../snapshot/run-step.js";

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
  /** Parallel stages; defaults to the number of cores. */
  jobs?: number;
  /** RUN sandbox: crun, runc or bwrap (auto: the first one installed). */
  executor?: ExecutorPreference;
  /** Snapshots for RUN: overlayfs, or a copy of the rootfs (auto: overlay when it can be mounted). */
  snapshotter?: SnapshotterKind;
  /** Secrets for RUN --mount=type=secret, by id (from `--secret id=x,src=path|env=VAR`). */
  secrets?: Map<string, SecretSource>;
  signal?: AbortSignal;
}

/** The built image lives in the store (the stage rootfs dirs are gone); exporters read it from there. */
export interface BuildResult extends StoredImage {
  /** Normalised names the image was tagged with. */
  tags: string[];
  warnings: Warning[];
}

interface StageResult {
  state: StageState;
  rootfs: string;
}

interface BuildRun {
  engine: Engine;
  staged: StagedDockerfile;
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
  snapshotter: SnapshotterKind;
  secrets: Map<string, SecretSource>;
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
    try {
      text = await readFile(dockerfilePath, "utf8");
    } catch {
      throw new BuildError("DOCKERFILE_NOT_FOUND", `cannot read Dockerfile ${dockerfilePath}`, { hint: "use -f PATH to pick another Dockerfile" });
    }
  }
  const displayName = opts.dockerfileDisplayName ?? (relative(process.cwd(), dockerfilePath).startsWith("..") ? dockerfilePath : relative(process.cwd(), dockerfilePath));
  const parsed = parseDockerfile(text, { file: displayName });
  const staged = splitStages(parsed);
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
  const target = opts.target === undefined ? staged.stages[staged.stages.length - 1] : findStage(staged, opts.target);
  if (!target) {
    const names = staged.stages.map((s) => s.name).filter(Boolean);
    throw new BuildError("UNKNOWN_TARGET", `target stage "${opts.target}" could not be found`, {
      hint: names.length ? `stages in ${displayName}: ${names.join(", ")}` : `${displayName} has no named stages (use FROM image AS name)`,
    });
  }

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
  const scratch = await engine.scratch("build");
  const run: BuildRun = {
    engine,
    staged,
    escape: parsed.directives.escape,
    globalArgs: new Map(),
    buildArgs,
    usedBuildArgs: new Set(["SOURCE_DATE_EPOCH"]),
    context,
    workdir: scratch.path,
    epoch,
    clampEpoch: epochValue,
    created,
    platform: hostPlatform(),
    signal: controller.signal,
    stageRuns: new Map(),
    imageRootfs: new Map(),
    limit: pLimit(Math.max(1, opts.jobs ?? availableParallelism())),
    stepCounter: 0,
    executor: once(() => selectExecutor(opts.executor ?? "auto")),
    snapshotter: opts.snapshotter ?? "auto",
    secrets: opts.secrets ?? new Map(),
  };
  try {
    run.globalArgs = predefinedArgs(run.platform, target.name ?? String(target.index));
    for (const name of PROXY_ARGS) if (buildArgs.has(name)) run.usedBuildArgs.add(name);
    evaluateGlobalArgs(run);
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
    const finalConfig = { ...result.state.config, created: run.created };
    const stored = await writeImage(engine.content, orderConfig(finalConfig), result.state.layers);
    for (const t of tags) await engine.images.set(t, stored.manifest);
    for (const name of buildArgs.keys())
      if (!run.usedBuildArgs.has(name)) warnings.push({ code: "UnusedBuildArg", message: `build arg ${name} was not consumed by any instruction` });
    for (const w of warnings) engine.progress.emit({ kind: "warning", message: w.message, rule: w.code, ...(w.range ? { range: w.range } : {}) });
    return { ...stored, tags, warnings };
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    await scratch.release();
  }
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
  for (const p of [`${dockerfilePath}.dockerignore`, join(contextDir, ".dockerignore")]) {
    try {
      return await readFile(p, "utf8");
    } catch {
      /* absent */
    }
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

/** BuildKit's automatic platform ARGs; a stage sees them once it declares `ARG NAME`. */
export function predefinedArgs(platform: { os: string; architecture: string; variant?: string }, targetStage: string): Map<string, string> {
  const p = `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ""}`;
  return new Map([
    ["TARGETPLATFORM", p],
    ["TARGETOS", platform.os],
    ["TARGETARCH", platform.architecture],
    ["TARGETVARIANT", platform.variant ?? ""],
    ["BUILDPLATFORM", p],
    ["BUILDOS", platform.os],
    ["BUILDARCH", platform.architecture],
    ["BUILDVARIANT", platform.variant ?? ""],
    ["TARGETSTAGE", targetStage],
  ]);
}

/** Global ARGs (before the first FROM) are visible to FROM lines; a stage sees them only if it re-declares them. */
function evaluateGlobalArgs(run: BuildRun): void {
  for (const instr of run.staged.globalArgs) {
    const typed = decodeInstruction(instr);
    if (typed.kind !== "ARG") continue;
    for (const a of typed.args) {
      const fromCli = run.buildArgs.get(a.name);
      if (fromCli !== undefined) {
        run.usedBuildArgs.add(a.name);
        run.globalArgs.set(a.name, fromCli);
      } else if (a.default !== undefined) run.globalArgs.set(a.name, expand(run, a.default, run.globalArgs, instr.range));
    }
  }
}

function runStage(run: BuildRun, stage: Stage): Promise<StageResult> {
  let p = run.stageRuns.get(stage.index);
  if (!p) {
    p = executeStage(run, stage);
    run.stageRuns.set(stage.index, p);
  }
  return p;
}

async function executeStage(run: BuildRun, stage: Stage): Promise<StageResult> {
  // Dependencies first, outside the limiter, so waiting stages never hold a slot.
  const baseName = expand(run, stage.base, run.globalArgs, stage.from.range);
  const baseStage = stageRef(run, baseName, stage, "FROM", stage.from.range);
  const deps: Promise<unknown>[] = [];
  if (baseStage) deps.push(runStage(run, baseStage));
  for (const instr of stage.instructions)
    for (const from of stageRefs(instr)) {
      const dep = stageRef(run, expand(run, from, run.globalArgs, instr.range), stage, "--from", instr.range);
      if (dep) deps.push(runStage(run, dep));
    }
  await Promise.all(deps);
  return run.limit(async () => {
    throwIfAborted(run.signal);
    const rootfs = join(run.workdir, `stage-${stage.index}`);
    await mkdir(rootfs, { recursive: true });
    const state = await prepareBase(run, stage, baseName, baseStage, rootfs);
    // The base image's ONBUILD triggers run right after FROM, and are not inherited further (Docker).
    const triggers = onbuildTriggers(state.config.config.OnBuild ?? [], stage);
    delete state.config.config.OnBuild;
    for (const instr of [...triggers, ...stage.instructions]) {
      throwIfAborted(run.signal);
      await runStep(run, stage, state, rootfs, instr);
    }
    return { state, rootfs };
  });
}

/** Parse ONBUILD trigger strings as instructions positioned at the FROM line that inherits them. */
function onbuildTriggers(exprs: string[], stage: Stage): Instruction[] {
  if (exprs.length === 0) return [];
  const parsed = parseDockerfile(exprs.join("\n") + "\n", { file: `${stage.from.range.file} (ONBUILD of ${stage.base})` });
  return parsed.instructions.map((i) => ({ ...i, range: stage.from.range }));
}

/**
 * The earlier stage an expanded reference names (by name, or by index except in FROM), or undefined for an image.
 * A stage can only use stages defined before it.
 */
function stageRef(run: BuildRun, ref: string, current: Stage, what: string, range: SourceRange): Stage | undefined {
  const numeric = /^\d+$/.test(ref);
  if (what === "FROM" && numeric) return undefined;
  const s = findStage(run.staged, ref);
  if (!s) {
    if (numeric) throw new BuildError("UNKNOWN_STAGE", `${what} ${ref}: there is no stage ${ref} before this one`, { range });
    return undefined;
  }
  if (s.index >= current.index)
    throw new BuildError("STAGE_ORDER", `${what} ${ref}: stage "${ref}" is this stage or a later one; a stage can only use earlier stages`, { range });
  return s;
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

async function prepareBase(run: BuildRun, stage: Stage, baseName: string, baseStage: Stage | undefined, rootfs: string): Promise<StageState> {
  const node = `stage-${stage.index}-from`;
  const label = `[${stagePrefix(run, stage)}1/${stage.instructions.length + 1}] FROM ${baseName}`;
  const started = Date.now();
  run.engine.progress.emit({ kind: "step-start", node, name: label, range: stage.from.range, cached: false });
  let state: StageState;
  if (baseStage) {
    const base = await runStage(run, baseStage);
    await cp(base.rootfs, rootfs, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true, force: true });
    state = { config: structuredClone(base.state.config), layers: [...base.state.layers], args: new Map(), cmdSet: false };
  } else if (baseName.toLowerCase() === "scratch") {
    state = { config: emptyConfig(run), layers: [], args: new Map(), cmdSet: false };
  } else {
    const image = await resolveImage(run, baseName, stage.from.range);
    await extractImage(run, image.layers, rootfs);
    const config = structuredClone(image.config);
    config.history ??= [];
    config.config ??= {};
    if (getEnv(config, "PATH") === undefined) config.config.Env = setEnv(config.config.Env, "PATH", DEFAULT_PATH);
    state = { config, layers: image.layers, args: new Map(), cmdSet: false };
  }
  // The new image gets this build's platform and creation time; its history and layers carry over.
  delete state.config.created;
  run.engine.progress.emit({ kind: "step-end", node, durationMs: Date.now() - started });
  return state;
}

async function resolveImage(run: BuildRun, name: string, range: SourceRange): Promise<{ config: ImageConfig; layers: LayerRef[] }> {
  let found;
  try {
    found = await findImage(run.engine.content, run.engine.images, name);
  } catch (e) {
    if (e instanceof TsbuildError) throw new BuildError(e.code, e.message, { range, hint: e.hint, cause: e });
    throw e;
  }
  if (!found)
    throw new BuildError("IMAGE_NOT_FOUND", `base image ${name} is not in the local store`, {
      range,
      hint: "import it first with `tsbuild load -i IMAGE.tar` (pulling from a registry is not supported yet)",
    });
  return {
    config: found.config,
    layers: found.manifest.layers.map((l) => ({ diffId: l.digest, size: l.size })),
  };
}

async function extractImage(run: BuildRun, layers: LayerRef[], rootfs: string): Promise<void> {
  for (const l of layers) {
    throwIfAborted(run.signal);
    if (!(await run.engine.content.has(l.diffId)))
      throw new BuildError("BLOB_NOT_FOUND", `layer ${l.diffId} of the base image is missing from the store`, { hint: "re-import the base image with `tsbuild load -i`" });
    await extractLayer(createReadStream(run.engine.content.path(l.diffId)), rootfs, { signal: run.signal });
  }
}

/** The rootfs of an image named in COPY --from=<image>, materialised once per build. */
function imageRootfs(run: BuildRun, name: string, range: SourceRange): Promise<string> {
  let p = run.imageRootfs.get(name);
  if (!p) {
    p = (async () => {
      const image = await resolveImage(run, name, range);
      const dir = join(run.workdir, `image-${run.imageRootfs.size}`);
      await mkdir(dir, { recursive: true });
      await extractImage(run, image.layers, dir);
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

function stepLabel(run: BuildRun, stage: Stage, instr: Instruction): string {
  const pos = stage.instructions.indexOf(instr) + 2;
  // One line: continuations collapsed, heredoc bodies left out.
  const firstLines = instr.heredocs.length ? instr.original.split("\n")[0] ?? "" : instr.original;
  const text = firstLines.replace(/[\\`]?[ \t]*\n[ \t]*/g, " ").trim();
  if (pos === 1) return `[${stagePrefix(run, stage)}ONBUILD] ${text}`;
  return `[${stagePrefix(run, stage)}${pos}/${stage.instructions.length + 1}] ${text}`;
}

async function runStep(run: BuildRun, stage: Stage, state: StageState, rootfs: string, instr: Instruction): Promise<void> {
  const node = `stage-${stage.index}-step-${++run.stepCounter}`;
  const started = Date.now();
  run.engine.progress.emit({ kind: "step-start", node, name: stepLabel(run, stage, instr), range: instr.range, cached: false });
  try {
    await dispatch(run, stage, state, rootfs, decodeInstruction(instr), node);
    run.engine.progress.emit({ kind: "step-end", node, durationMs: Date.now() - started });
  } catch (e) {
    const err = e instanceof TsbuildError && !e.range ? new BuildError(e.code, e.message, { range: instr.range, hint: e.hint, cause: e }) : e;
    run.engine.progress.emit({ kind: "step-end", node, durationMs: Date.now() - started, error: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}

function addHistory(run: BuildRun, state: StageState, createdBy: string, emptyLayer: boolean): void {
  const h: HistoryEntry = { created: run.created, created_by: createdBy, comment: HISTORY_COMMENT };
  if (emptyLayer) h.empty_layer = true;
  (state.config.history ??= []).push(h);
}

async function addLayer(run: BuildRun, state: StageState, entries: LayerEntry[], createdBy: string): Promise<void> {
  if (entries.length === 0) {
    addHistory(run, state, createdBy, true);
    return;
  }
  const { diffId, size } = await storeLayer(run.engine.content, entries, { signal: run.signal });
  state.layers.push({ diffId, size });
  state.config.rootfs.diff_ids.push(diffId);
  addHistory(run, state, createdBy, false);
}

function meta(run: BuildRun, state: StageState, change: MetaChange, range: SourceRange): void {
  const r = applyMeta(state.config, change, state.cmdSet, range);
  state.config = r.config;
  if (r.cmdSet) state.cmdSet = true;
  addHistory(run, state, r.createdBy, true);
}

/** Go-duration string (e.g. 30s, 1m30s) already parsed by the frontend into nanoseconds. */
async function dispatch(run: BuildRun, stage: Stage, state: StageState, rootfs: string, t: TypedInstruction, node: string): Promise<void> {
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
    case "WORKDIR": {
      const prev = state.config.config.WorkingDir || "/";
      const path = posix.resolve(prev, x(t.path));
      const user = state.config.config.User;
      const owner = user ? await lookupUser(rootfs, user) : undefined;
      const entries = await ensureDir(rootfs, path, owner ? { uid: owner.uid, gid: owner.gid } : undefined, run.epoch);
      state.config.config.WorkingDir = path;
      await addLayer(run, state, entries, `WORKDIR ${path}`);
      return;
    }
    case "COPY":
    case "ADD": {
      let from: Parameters<typeof applyCopy>[0]["from"] = { kind: "context", context: run.context };
      if (t.from !== undefined) {
        const name = expand(run, t.from, run.globalArgs, range);
        const dep = stageRef(run, name, stage, "--from", range);
        if (dep) from = { kind: "rootfs", dir: (await runStage(run, dep)).rootfs };
        else from = { kind: "rootfs", dir: await imageRootfs(run, name, range) };
      }
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
      const heredocs = t.heredocs.map((h) => ({ name: h.name, content: h.expand ? expand(run, h.content, e, range) : h.content }));
      const entries = await applyCopy({
        rootfs,
        sources: t.sources.map((s) => expand(run, s, e, range)),
        dest: expand(run, t.dest, e, range),
        workdir: state.config.config.WorkingDir || "/",
        from,
        ...(t.chown !== undefined ? { chown: expand(run, t.chown, e, range) } : {}),
        ...(t.chmod !== undefined ? { chmod: expand(run, t.chmod, e, range) } : {}),
        isAdd: t.kind === "ADD",
        heredocs,
        epoch: run.epoch,
        // SOURCE_DATE_EPOCH clamps every layer's timestamps, also of files an earlier RUN wrote (COPY --from).
        clampMtime: run.clampEpoch !== undefined,
        range,
        signal: run.signal,
      });
      const flags = t.src.flags.length ? `${t.src.flags.join(" ")} ` : "";
      await addLayer(run, state, entries, `${t.kind} ${flags}${t.sources.join(" ")} ${t.dest} # buildkit`);
      return;
    }
    case "RUN": {
      if (t.security !== undefined && t.security !== "sandbox")
        throw new BuildError("UNSUPPORTED", `RUN --security=${t.security} is not supported`, { range, hint: "tsbuild runs every step sandboxed" });
      const network = t.network ?? "default";
      if (network !== "default" && network !== "none" && network !== "host")
        throw new BuildError("BAD_FLAG_VALUE", `RUN --network=${network}: expected default, none or host`, { range });
      const e = env();
      const specs = t.mounts.map((m) => parseMountSpec(expand(run, m, e, range), range));
      const mounts = await prepareRunMounts(specs, {
        storeRoot: run.engine.root,
        // A sibling of executeRun's own scratch dir, which it removes itself.
        scratch: join(run.workdir, `mounts-${node}`),
        context: { root: run.context.root },
        stageRootfs: async (name) => {
          const dep = stageRef(run, name, stage, "--mount from", range);
          return dep ? (await runStage(run, dep)).rootfs : undefined;
        },
        secrets: run.secrets,
        signal: run.signal,
        range,
        workdir: state.config.config.WorkingDir || "/",
      });
      try {
        const entries = await executeRun(
          state,
          {
            json: t.json,
            args: t.json ? t.command : [t.script],
            heredocs: t.heredocs,
            network,
            extraEnv: PROXY_ARGS.flatMap((n) => (run.buildArgs.has(n) ? [`${n}=${run.buildArgs.get(n)}`] : [])),
            mounts: mounts.mounts,
            secretEnv: mounts.env,
          },
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
        const flags = t.mounts.length ? `${t.src.flags.filter((f) => f.startsWith("--mount=")).join(" ")} ` : "";
        await addLayer(run, state, entries, `RUN ${flags}${t.json ? t.command.join(" ") : [...(state.config.config.Shell ?? DEFAULT_SHELL), t.script].join(" ")} # buildkit`);
      } finally {
        await mounts.release();
      }
      return;
    }
    case "FROM":
      throw new BuildError("INTERNAL", "FROM inside a stage", { range });
  }
}

