// Runs the plan: a stage starts once the stages it reads are done, its steps run in order, and a --jobs slot is held
// only while a step executes (never while waiting), so no stage can wait on a slot it holds.
import type { Digest } from "../image/types.js";
import { unmappedOwnerError } from "../util/user-namespace.js";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { TsbuildError, throwIfAborted, attachRange } from "../errors.js";
import { parseDockerfile } from "../frontend/parse.js";
import { type PlannedStage } from "../frontend/plan.js";
import { decodeInstruction } from "../frontend/instructions.js";
import type { Instruction, Stage } from "../frontend/types.js";
import { storeLayer } from "../layer/store-layer.js";
import { type StageState } from "./stage-state.js";
import { cacheKey } from "../cache/keys.js";
import { peekStepRecord, putStepRecord, type StepRecord } from "../cache/records.js";
import { explainMiss, loadExplain, saveExplain } from "../cache/explain.js";
import { materialize, STACK_MIN_BYTES, stageRootfs, type StageRootfs } from "./stage-rootfs.js";
import { nodePrefix, stagePrefix, type BuildSession, type StageResult } from "./build-session.js";
import { prepareBase } from "./base-image.js";
import { isLayerStep, planLayerStep, type LayerKind, type LayerStepPlan } from "./step-planner.js";
import { findStepRecord } from "./step-cache.js";
import { addHistory, dispatch } from "./config-step.js";
import { stepNumbers, type StepNumbers } from "./step-numbers.js";

export function runStage(run: BuildSession, stage: Stage): Promise<StageResult> {
  let p = run.stageRuns.get(stage.index);
  if (!p) {
    p = executeStage(run, stage);
    run.stageRuns.set(stage.index, p);
  }
  return p;
}

export async function executeStage(run: BuildSession, stage: Stage): Promise<StageResult> {
  // Every stage the plan says this one reads is built first. No --jobs slot is held while waiting: slots are taken
  // only around a step's execution (cachedStep), so a stage can never wait on a slot it holds itself.
  const planned = run.plan.stages[stage.index] as PlannedStage;
  await Promise.all(planned.edges.map((e) => runStage(run, run.staged.stages[e.index] as Stage)));
  throwIfAborted(run.signal);
  const baseStage = planned.base.kind === "stage" ? run.staged.stages[planned.base.index] : undefined;
  const fs = stageRootfs(join(run.workdir, `stage-${stage.index}`));
  run.rootfsList.push(fs);
  // --build-context NAME=docker-image://REF: the plan already replaced the name by REF (a directory: see context-base.ts).
  const state = await prepareBase(
    run,
    stage,
    planned.base.kind === "image" || planned.base.kind === "context" ? planned.base.name : planned.baseName,
    baseStage,
  );
  // The base image's ONBUILD triggers run right after FROM, and are not inherited further (Docker).
  // A stage a --build-context of its own name replaces is that context alone: no trigger or instruction runs.
  const triggers = planned.replacedBy !== undefined ? [] : onbuildTriggers(state.config.config.OnBuild ?? [], stage);
  delete state.config.config.OnBuild;
  const numbers = stepNumbers(planned);
  // A stage a --build-context of its own name replaces runs nothing.
  const all = planned.replacedBy !== undefined ? [] : [...triggers, ...stage.instructions];
  // After the stage's last filesystem step only other stages and outputs read its rootfs, and they materialise it.
  const lastLayer = all.findLastIndex((instr) => LAYER_KEYWORDS.has(instr.keyword));
  for (const [i, instr] of all.entries()) {
    throwIfAborted(run.signal);
    const position = i < triggers.length ? `onbuild-${i}` : String(i - triggers.length);
    await runStep(run, stage, state, fs, instr, position, numbers, i === lastLayer);
  }
  return { state, fs };
}

/** The finished stage's rootfs on disk (materialised on first use). */
export async function stageDir(run: BuildSession, stage: Stage): Promise<string> {
  const r = await runStage(run, stage);
  return materialize(r.fs, r.state.layers, r.state.key, run.engine.content, run.snapshots, run.signal);
}

/** Parse ONBUILD trigger strings as instructions positioned at the FROM line that inherits them. */
export function onbuildTriggers(exprs: string[], stage: Stage): Instruction[] {
  if (exprs.length === 0) return [];
  const parsed = parseDockerfile(exprs.join("\n") + "\n", { file: `${stage.from.range.file} (ONBUILD of ${stage.base})` });
  return parsed.instructions.map((i) => ({ ...i, range: stage.from.range }));
}

/**
 * `[stage k/n] RUN …` for a layer step (numbers from the plan: see step-numbers.ts), `[stage ONBUILD] …` for a base
 * image's trigger, `[stage] ENV …` for a config-only step (folded: shown only if it fails).
 */
export function stepLabel(run: BuildSession, stage: Stage, instr: Instruction, position: string, numbers: StepNumbers): string {
  // One line: continuations collapsed, heredoc bodies left out.
  const firstLines = instr.heredocs.length ? (instr.original.split("\n")[0] ?? "") : instr.original;
  const text = firstLines.replace(/[\\`]?[ \t]*\n[ \t]*/g, " ").trim();
  const prefix = stagePrefix(run, stage);
  // From the position, not indexOf (which made 50,000 ONBUILD triggers quadratic): an ONBUILD trigger is "onbuild-N".
  if (position.startsWith("onbuild-")) return `[${prefix}ONBUILD] ${text}`;
  const k = numbers.numberOf.get(instr);
  if (k === undefined) return prefix ? `[${prefix.trim()}] ${text}` : text;
  return `[${prefix}${k}/${numbers.total}] ${text}`;
}

/** The instructions that make a filesystem step (isLayerStep of the decoded instruction). */
const LAYER_KEYWORDS = new Set(["RUN", "COPY", "ADD", "WORKDIR"]);

export async function runStep(
  run: BuildSession,
  stage: Stage,
  state: StageState,
  fs: StageRootfs,
  instr: Instruction,
  position: string,
  numbers: StepNumbers,
  /** Nothing in the stage reads the rootfs after this step: a copy may leave it unwritten (see cachedStep). */
  lastLayer = false,
): Promise<void> {
  const node = `${nodePrefix(run)}stage-${stage.index}-step-${++run.stepCounter}`;
  const name = stepLabel(run, stage, instr, position, numbers);
  const started = Date.now();
  let announced = false;
  let folded = false;
  const announce = (cached: boolean) => {
    announced = true;
    run.progress.emit({ kind: "step-start", node, name, range: instr.range, cached, ...(folded ? { folded } : {}) });
  };
  try {
    // Planned instructions were decoded by the plan; ONBUILD triggers of a base image are decoded as they come.
    const t = run.plan.stages[stage.index]?.typed.get(instr) ?? decodeInstruction(instr);
    if (isLayerStep(t)) await cachedStep(run, stage, state, fs, t, { node, name, position, started, announce, lastLayer });
    else {
      folded = true;
      announce(false);
      await dispatch(run, state, t);
    }
    run.progress.emit({ kind: "step-end", node, durationMs: Date.now() - started });
  } catch (e) {
    // The instruction's place is attached without changing the error's class (a RegistryError stays one).
    const owner = unmappedOwnerError(e, instr.keyword);
    const err = owner ? attachRange(owner, instr.range) : e instanceof TsbuildError ? attachRange(e, instr.range) : e;
    if (!announced) announce(false);
    run.progress.emit({ kind: "step-end", node, durationMs: Date.now() - started, error: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}

export async function cachedStep(
  run: BuildSession,
  stage: Stage,
  state: StageState,
  fs: StageRootfs,
  t: LayerKind,
  step: { node: string; name: string; position: string; started: number; announce(cached: boolean): void; lastLayer?: boolean },
): Promise<void> {
  const plan = await planLayerStep(run, stage, state, t, step.node);
  // A --link layer's key leaves the parent out: a new base reuses it (the steps after it still see the base, below).
  const key = cacheKey(run.hasher, plan.link ? undefined : state.key, plan.parts);
  // The same key in another platform's session of this build is the same vertex: wait for its record instead of
  // running it again (set before any await, so two sessions cannot both miss it).
  const sharedVertex = run.vertices.get(key.digest);
  let settle: { resolve(r: StepRecord): void; reject(e: unknown): void } | undefined;
  if (!sharedVertex) {
    const p = new Promise<StepRecord>((resolve, reject) => (settle = { resolve, reject }));
    p.catch(() => undefined);
    run.vertices.set(key.digest, p);
  }
  try {
    await runOrShare();
  } catch (e) {
    settle?.reject(e);
    throw e;
  }

  async function runOrShare(): Promise<void> {
    const useCache = !run.noCache(stage);
    let record = sharedVertex ? await sharedVertex : useCache ? await findStepRecord(run, key.digest) : undefined;
    const hit = record !== undefined;
    step.announce(hit);
    let reasons: string[] = [];
    let like: Digest | undefined;
    if (!record) {
      const root = run.engine.root;
      const stepId = run.hasher.key(`${run.explainScope}\u0000${stage.name ?? stage.index}\u0000${step.position}`);
      // The parent key is part of the digest already; the record keeps it so an earlier change can be named.
      const now = { parts: { ...key.parts, ...(plan.link ? {} : { parent: state.key }) }, ...(plan.files ? { files: plan.files } : {}) };
      const before = await loadExplain(root, stepId);
      reasons = useCache ? explainMiss(before, now) : ["the cache is disabled for this step (--no-cache or --no-cache-filter)"];
      run.progress.emit({ kind: "cache-miss", node: step.node, reasons });
      // A --jobs slot only while the step executes: everything it waits for (stages it reads, base images) was
      // awaited while its key was computed, so a slot holder never waits on work that needs a slot.
      // The last filesystem step of a stage may write its layer without writing the rootfs too (a COPY from the
      // context: the files once, into the layer); the rootfs gets the layer, as after a cache hit, when next needed.
      let deferred = false;
      const layer = plan.noLayer
        ? null
        : plan.link
          ? await run.limit(() => linkedLayer(run, plan, step.node))
          : await storeLayer(
              run.engine.content,
              await run.limit(async () => {
                throwIfAborted(run.signal);
                const dir = await materialize(fs, state.layers, state.key, run.engine.content, run.snapshots, run.signal);
                // Also deferred when the stage is an overlay: a big layer is then mounted as a kept layer dir.
                const planned = (step.lastLayer || fs.mounted) && plan.executeDeferred ? await plan.executeDeferred(dir) : undefined;
                deferred = planned !== undefined;
                return planned ?? plan.execute(dir);
              }),
              // Every RUN/COPY/ADD/WORKDIR (but WORKDIR /) adds a layer, an empty tar when it changed nothing, as BuildKit writes it.
              { signal: run.signal },
            );
      record = { v: 1, key: key.digest, layer: layer && { diffId: layer.diffId, size: layer.size }, created: new Date().toISOString() };
      // What this step made last time: a kept layer dir of the new layer can be a delta over that one's.
      // Only a layer big enough to be mounted as a kept dir can use it: smaller ones cost no record read.
      if (layer && layer.size >= STACK_MIN_BYTES && before && before.key !== key.digest) {
        const was = peekStepRecord(root, before.key)?.layer?.diffId;
        if (was !== undefined && was !== layer.diffId) like = was;
      }
      await putStepRecord(root, record);
      await saveExplain(root, stepId, { v: 1, key: key.digest, ...now });
      // The directory already holds this step's changes (a linked or deferred layer is applied when the rootfs is next needed).
      if (layer && !plan.link && !deferred) fs.applied = state.layers.length + 1;
    }
    plan.effect?.();
    if (record.layer) {
      state.layers.push({ diffId: record.layer.diffId, size: record.layer.size, ...(like ? { like } : {}) });
      state.config.rootfs.diff_ids.push(record.layer.diffId);
    }
    addHistory(run, state, plan.createdBy, record.layer === null);
    // After a linked layer the chain is the base plus that layer (BuildKit's MergeOp): what follows re-runs on a new base.
    state.key = plan.link ? cacheKey(run.hasher, state.key, { merge: key.digest }).digest : key.digest;
    settle?.resolve(record);
    run.records.push({ stage: stage.index, record });
    run.steps.push({
      node: step.node,
      name: step.name,
      stage: stage.index,
      cached: hit,
      durationMs: Date.now() - step.started,
      key: key.digest,
      reasons,
      ...(run.platformLabel ? { platform: run.platformLabel } : {}),
      ...(sharedVertex ? { shared: true } : {}),
    });
  }
}

/** A --link step's layer: the copy runs on a fresh empty directory, stored, then the directory is removed. */
async function linkedLayer(run: BuildSession, plan: LayerStepPlan, node: string): Promise<Awaited<ReturnType<typeof storeLayer>>> {
  throwIfAborted(run.signal);
  const dir = join(run.workdir, `link-${node}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  try {
    return await storeLayer(run.engine.content, await plan.execute(dir), { signal: run.signal });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
