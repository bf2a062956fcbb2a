// The build plan: every stage reference (FROM, COPY/ADD --from, RUN --mount from=) resolved once, before anything
// runs, the way BuildKit's dockerfile2llb does: all stages are registered first, so COPY --from may name a later
// stage; FROM names only earlier ones; a cycle is an error; only the stages the target needs are in the plan.
// Pure: `check`, `parse` and `build` get the same answer (and the same error at the same place) from here.
import { BuildError, DockerfileParseError, TsbuildError, attachRange } from "../errors.js";
import { expandWord, expandWordWithInfo } from "./expand.js";
import { normalizeName, parseReference } from "../image/reference.js";
import { suggest } from "../util/suggest.js";
import { decodeInstruction, type TypedInstruction } from "./instructions.js";
import { argWordRanges, flagRange } from "./locate.js";
import { findStage, splitStages } from "./stages.js";
import type { Instruction, ParsedDockerfile, SourceRange, Stage, StagedDockerfile } from "./types.js";
import { formatPlatform, normalizePlatform, parsePlatform } from "../image/platform.js";

export interface PlanPlatform {
  os: string;
  architecture: string;
  variant?: string;
}

/** What a FROM or --from names once resolved. */
export type SourceRef = { kind: "stage"; index: number } | { kind: "image"; name: string } | { kind: "scratch" } | { kind: "context"; name: string };

/**
 * A named build context (`--build-context NAME=…`) as the plan sees it: an image it stands for, or a directory
 * (a local one, or a git/https one fetched before planning) known to the solver by name.
 */
export type NamedContextRef = { kind: "image"; ref: string } | { kind: "dir" };

/** An edge of the stage graph: `index` must be built before the stage that holds it. */
export interface StageEdge {
  index: number;
  via: "FROM" | "--from" | "--mount from";
  range: SourceRange;
}

export interface PlannedStage {
  stage: Stage;
  /** FROM's base after expansion with the global ARGs. */
  baseName: string;
  base: SourceRef;
  /** Every stage this stage reads, in the order the references appear. */
  edges: StageEdge[];
  /** What each COPY/ADD --from names, by instruction. */
  copyFrom: Map<Instruction, SourceRef>;
  /** Every instruction of the stage, decoded once (flags and forms checked), in order. */
  typed: Map<Instruction, TypedInstruction>;
  /** `FROM --platform=...` after expansion (e.g. $BUILDPLATFORM), normalised; absent: the build's target platform. */
  platform?: PlanPlatform;
  /**
   * The --build-context whose name is this stage's own: the stage is that context (`base`) and none of its
   * instructions run (dockerfile2llb marks it dispatched), as when the stage is the target.
   */
  replacedBy?: string;
}

export interface BuildPlan {
  staged: StagedDockerfile;
  escape: string;
  stages: PlannedStage[];
  target: PlannedStage;
  /** The stages the target needs (itself included), each after the stages it reads. */
  order: number[];
  /** Global ARG values (build args applied) plus the predefined platform ARGs; FROM lines expand with these. */
  globalArgs: Map<string, string>;
  /** Build args some ARG declared (the rest are reported as unused, as BuildKit does). */
  usedBuildArgs: Set<string>;
  /** `--build-context` names, lower-cased: FROM, --from and --mount from= see them before stages and images. */
  namedContexts: ReadonlyMap<string, NamedContextRef>;
}

export interface PlanOptions {
  buildArgs?: Record<string, string> | Map<string, string>;
  /** Stage name or index; default the last stage. */
  target?: string;
  /** The platform being built (TARGETPLATFORM). */
  platform: PlanPlatform;
  /** The platform the build runs on (BUILDPLATFORM); default `platform`. */
  buildPlatform?: PlanPlatform;
  /** `--build-context NAME=…`: overrides a stage or image reference of the same name, as buildx does. */
  namedContexts?: ReadonlyMap<string, NamedContextRef>;
}

/**
 * BuildKit's automatic platform ARGs; a stage sees them once it declares `ARG NAME`. Values are containerd's
 * normalised forms (`linux/arm64`, TARGETVARIANT empty; `linux/arm/v7`, TARGETVARIANT v7), as BuildKit sets them.
 */
export function predefinedArgs(platform: PlanPlatform, targetStage: string, buildPlatform: PlanPlatform = platform): Map<string, string> {
  const t = normalizePlatform(platform);
  const b = normalizePlatform(buildPlatform);
  return new Map([
    ["TARGETPLATFORM", formatPlatform(t)],
    ["TARGETOS", t.os],
    ["TARGETARCH", t.architecture],
    ["TARGETVARIANT", t.variant ?? ""],
    ["BUILDPLATFORM", formatPlatform(b)],
    ["BUILDOS", b.os],
    ["BUILDARCH", b.architecture],
    ["BUILDVARIANT", b.variant ?? ""],
    ["TARGETSTAGE", targetStage],
  ]);
}

function expandAt(word: string, env: Map<string, string>, escape: string, range: SourceRange): string {
  try {
    return expandWord(word, env, { escape, range });
  } catch (e) {
    if (e instanceof TsbuildError) throw attachRange(e, range);
    throw e;
  }
}

/** FROM --platform=VALUE, expanded with the global ARGs (BuildKit: $BUILDPLATFORM, $TARGETPLATFORM, own ARGs). */
function stagePlatform(value: string, globalArgs: Map<string, string>, escape: string, range: SourceRange): PlanPlatform {
  const expanded = expandAt(value, globalArgs, escape, range);
  try {
    return parsePlatform(expanded);
  } catch (e) {
    if (e instanceof TsbuildError) throw attachRange(e, range);
    throw e;
  }
}

function stageLabel(s: Stage): string {
  return s.name ?? `stage-${s.index}`;
}

/** The --from value of a COPY/ADD and where it is written. */
function copyFromFlag(i: Instruction): { value: string; range: SourceRange } | undefined {
  const at = i.flags.findIndex((f) => f.startsWith("--from="));
  if (at < 0) return undefined;
  return { value: (i.flags[at] as string).slice("--from=".length), range: flagRange(i, at) };
}

/** The from= values of a RUN's --mount flags, with where each flag is written. */
function mountFromFlags(i: Instruction): { value: string; range: SourceRange }[] {
  const out: { value: string; range: SourceRange }[] = [];
  i.flags.forEach((f, at) => {
    if (!f.startsWith("--mount=")) return;
    for (const kv of f.slice("--mount=".length).split(",")) {
      const eq = kv.indexOf("=");
      if (eq > 0 && kv.slice(0, eq).trim().toLowerCase() === "from")
        out.push({
          value: kv
            .slice(eq + 1)
            .trim()
            .replace(/^"(.*)"$/, "$1"),
          range: flagRange(i, at),
        });
    }
  });
  return out;
}

/**
 * What `ref` names from `current` (BuildKit's rules): FROM matches an earlier stage by name only; --from and
 * --mount from= match any stage by name, and --from also by index (an index with no stage is an error).
 */
export function resolveSourceRef(
  staged: StagedDockerfile,
  ref: string,
  current: Stage,
  via: StageEdge["via"],
  range: SourceRange,
  named: ReadonlyMap<string, NamedContextRef> = new Map(),
): SourceRef {
  // A named context wins over a stage or image of that name (buildx: "a stage with the same name is overwritten").
  const key = namedContextKey(named, ref);
  if (key !== undefined) return contextRef(named, key);
  if (ref.toLowerCase() === "scratch") return { kind: "scratch" };
  if (via === "FROM") {
    const s = /^\d+$/.test(ref) ? undefined : findStage(staged, ref);
    return s && s.index < current.index ? { kind: "stage", index: s.index } : { kind: "image", name: ref };
  }
  if (/^\d+$/.test(ref)) {
    const s = staged.stages[Number(ref)];
    if (!s) throw new BuildError("UNKNOWN_STAGE", `${via}=${ref}: there is no stage ${ref} (stages are numbered 0 to ${staged.stages.length - 1})`, { range });
    return { kind: "stage", index: s.index };
  }
  const s = findStage(staged, ref);
  return s ? { kind: "stage", index: s.index } : { kind: "image", name: ref };
}

function contextRef(named: ReadonlyMap<string, NamedContextRef>, key: string): SourceRef {
  const c = named.get(key) as NamedContextRef;
  return c.kind === "image" ? { kind: "image", name: c.ref } : { kind: "context", name: key };
}

/** The named context `ref` means: its name (case-insensitive), or for an image reference the same normalised image. */
function namedContextKey(named: ReadonlyMap<string, NamedContextRef>, ref: string): string | undefined {
  if (named.size === 0) return undefined;
  const lower = ref.toLowerCase();
  if (named.has(lower)) return lower;
  const norm = normalizeOrUndefined(ref);
  if (norm === undefined) return undefined;
  for (const k of named.keys()) if (normalizeOrUndefined(k) === norm) return k;
  return undefined;
}

function normalizeOrUndefined(ref: string): string | undefined {
  try {
    return normalizeName(ref);
  } catch {
    return undefined;
  }
}

/** The stages' names, in Dockerfile order: what a misspelled --target or --from is compared with. */
export function stageNames(staged: StagedDockerfile): string[] {
  return staged.stages.flatMap((s) => (s.name ? [s.name] : []));
}

/**
 * For an image reference that could not be found: the stage it was most likely meant to name ("did you mean ...?"),
 * or undefined. FROM only names earlier stages, so a FROM naming a later one is told so.
 */
export function stageHint(staged: StagedDockerfile, ref: string, current?: Stage): string | undefined {
  const names = stageNames(staged);
  // An exact name is "close" too here: FROM may name a stage that exists but comes later.
  const close = names.find((n) => n.toLowerCase() === ref.toLowerCase()) ?? suggest(ref, names);
  if (!close) return undefined;
  const s = findStage(staged, close) as Stage;
  if (current && s.index >= current.index)
    return `did you mean the stage ${close}? FROM names only a stage defined above it, and ${close} comes later, so ${JSON.stringify(ref)} was taken as an image`;
  return `did you mean ${close}? no stage is named ${JSON.stringify(ref)}, so it was taken as an image`;
}

/**
 * A FROM's base name, expanded with the global ARGs. Empty (or, because an ARG is empty, not an image name at all:
 * `FROM ${BASE}:1` → ":1") is an error naming the ARG that left it so, at the FROM's base word.
 */
function expandBase(staged: StagedDockerfile, stage: Stage, globalArgs: Map<string, string>, escape: string, range: SourceRange): string {
  let info: { value: string; used: string[]; unset: string[] };
  try {
    info = expandWordWithInfo(stage.base, globalArgs, { escape, range });
  } catch (e) {
    if (e instanceof TsbuildError) throw attachRange(e, range);
    throw e;
  }
  const baseName = info.value;
  const empty = [...info.used.filter((n) => globalArgs.get(n) === ""), ...info.unset.filter((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n))];
  const broken = baseName === "" || (empty.length > 0 && baseName.toLowerCase() !== "scratch" && !isReference(baseName));
  if (!broken) return baseName;
  const hint = "FROM lines see only the ARGs declared before the first FROM, with their defaults or --build-arg values";
  const name = empty[0];
  if (name === undefined) throw new BuildError("EMPTY_BASE", `base name (${stage.base}) should not be blank`, { range, hint });
  const declared = new Set(staged.globalArgs.flatMap((i) => i.args.map((a) => a.split("=")[0] as string)));
  const what = baseName === "" ? "base name is empty" : `base name ${JSON.stringify(baseName)} is not an image name`;
  const why = declared.has(name)
    ? `build arg ${name} has no value; give it a default (ARG ${name}=…) or --build-arg ${name}=…`
    : `${name} is not an ARG declared before the first FROM; declare it there with a default (ARG ${name}=…)`;
  throw new BuildError("EMPTY_BASE", `FROM ${stage.base}: ${what} because ${why}`, { range, hint });
}

function isReference(name: string): boolean {
  try {
    parseReference(name);
    return true;
  } catch {
    return false;
  }
}

/** Global ARGs (before the first FROM), build args applied; FROM lines see them, stages only when re-declared. */
function evaluateGlobalArgs(staged: StagedDockerfile, escape: string, buildArgs: Map<string, string>, used: Set<string>, into: Map<string, string>): void {
  for (const instr of staged.globalArgs) {
    const typed = decodeInstruction(instr);
    if (typed.kind !== "ARG") continue;
    for (const a of typed.args) {
      const fromCli = buildArgs.get(a.name);
      if (fromCli !== undefined) {
        used.add(a.name);
        into.set(a.name, fromCli);
      } else if (a.default !== undefined) into.set(a.name, expandAt(a.default, into, escape, instr.range));
    }
  }
}

/**
 * The variables a stage's instructions see by `instr`, as far as the Dockerfile alone tells (its ARG and ENV lines;
 * a base image's own ENV is not known here): what a RUN --mount from=$VAR most likely names.
 */
function staticScope(
  plan: { staged: StagedDockerfile; escape: string; globalArgs: Map<string, string> },
  stage: Stage,
  upTo: Instruction,
  buildArgs: Map<string, string>,
  decoded: Map<Instruction, TypedInstruction>,
): Map<string, string> {
  const env = new Map<string, string>();
  for (const i of stage.instructions) {
    if (i === upTo) break;
    const typed = decoded.get(i);
    if (!typed) continue;
    if (typed.kind === "ARG")
      for (const a of typed.args) {
        const v = buildArgs.get(a.name) ?? (a.default !== undefined ? expandWord(a.default, env, { escape: plan.escape }) : plan.globalArgs.get(a.name));
        env.set(a.name, v ?? "");
      }
    if (typed.kind === "ENV") {
      const before = new Map(env);
      for (const p of typed.pairs) env.set(expandWord(p.key, before, { escape: plan.escape }), expandWord(p.value, before, { escape: plan.escape }));
    }
  }
  return env;
}

export function planBuild(parsed: ParsedDockerfile, opts: PlanOptions): BuildPlan {
  const staged = splitStages(parsed);
  const escape = parsed.directives.escape;
  const buildArgs = opts.buildArgs instanceof Map ? opts.buildArgs : new Map(Object.entries(opts.buildArgs ?? {}));
  const targetStage = opts.target === undefined ? staged.stages[staged.stages.length - 1] : findStage(staged, opts.target);
  if (!targetStage) {
    const close = suggest(opts.target as string, stageNames(staged));
    const stages = `stages: ${staged.stages.map((s) => s.name ?? String(s.index)).join(", ")}`;
    throw new BuildError("UNKNOWN_TARGET", `target stage ${JSON.stringify(opts.target)} could not be found`, {
      hint: close ? `did you mean ${close}? (${stages})` : stages,
    });
  }
  const usedBuildArgs = new Set<string>();
  const globalArgs = predefinedArgs(opts.platform, targetStage.name ?? String(targetStage.index), opts.buildPlatform);
  evaluateGlobalArgs(staged, escape, buildArgs, usedBuildArgs, globalArgs);
  const partial = { staged, escape, globalArgs };
  const named = new Map([...(opts.namedContexts ?? new Map<string, NamedContextRef>())].map(([k, v]) => [k.toLowerCase(), v] as const));

  const stages: PlannedStage[] = [];
  for (const stage of staged.stages) stages.push(planStage(stage));
  function planStage(stage: Stage): PlannedStage {
    const fromRange = argWordRanges(stage.from)[0]?.range ?? stage.from.range;
    const baseName = expandBase(staged, stage, globalArgs, escape, fromRange);
    const own = stage.name !== undefined && named.has(stage.name.toLowerCase()) ? stage.name.toLowerCase() : undefined;
    const base = own !== undefined ? contextRef(named, own) : resolveSourceRef(staged, baseName, stage, "FROM", fromRange, named);
    // A stage FROM another stage runs on that stage's platform unless it names its own (as in BuildKit).
    const platform =
      stage.platform !== undefined
        ? stagePlatform(stage.platform, globalArgs, escape, stage.from.range)
        : base.kind === "stage"
          ? stages[base.index]?.platform
          : undefined;
    const edges: StageEdge[] = base.kind === "stage" ? [{ index: base.index, via: "FROM", range: fromRange }] : [];
    const copyFrom = new Map<Instruction, SourceRef>();
    // Every instruction is decoded here, in every stage (as BuildKit parses them all before it builds anything), so a
    // bad flag fails check, parse and build alike, at its own place, before any step runs.
    const typed = new Map<Instruction, TypedInstruction>();
    for (const i of stage.instructions) typed.set(i, decodeInstruction(i));
    if (own !== undefined) return { stage, baseName, base, edges: [], copyFrom: new Map(), typed, replacedBy: own, ...(platform ? { platform } : {}) };
    for (const i of stage.instructions) {
      if (i.keyword === "COPY" || i.keyword === "ADD") {
        const flag = copyFromFlag(i);
        if (!flag) continue;
        // BuildKit expands --from with no variables at all and refuses any change.
        if (expandWord(flag.value, new Map(), { escape }) !== flag.value)
          throw new DockerfileParseError(
            "FROM_EXPANSION",
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
            { range: flag.range },
          );
        const ref = resolveSourceRef(staged, flag.value, stage, "--from", flag.range, named);
        copyFrom.set(i, ref);
        if (ref.kind === "stage") edges.push({ index: ref.index, via: "--from", range: flag.range });
      } else if (i.keyword === "RUN") {
        for (const m of mountFromFlags(i)) {
          const value = m.value.includes("$") ? expandWord(m.value, staticScope(partial, stage, i, buildArgs, typed), { escape }) : m.value;
          if (value === "") continue;
          const ref = resolveSourceRef(staged, value, stage, "--mount from", m.range, named);
          if (ref.kind === "stage") edges.push({ index: ref.index, via: "--mount from", range: m.range });
        }
      }
    }
    return { stage, baseName, base, edges, copyFrom, typed, ...(platform ? { platform } : {}) };
  }

  // Depth-first: every cycle is an error (in any stage, as in BuildKit); from the target, the order to build in.
  const walk = (roots: number[], onDone?: (index: number) => void): void => {
    const state = new Map<number, "visiting" | "done">();
    const visit = (index: number, via?: StageEdge): void => {
      const s = state.get(index);
      if (s === "done") return;
      const planned = stages[index] as PlannedStage;
      if (s === "visiting") {
        throw new BuildError("CIRCULAR_DEPENDENCY", `circular dependency detected on stage: ${stageLabel(planned.stage)}`, {
          ...(via ? { range: via.range } : {}),
          hint: "a stage cannot read itself, or a stage that reads it",
        });
      }
      state.set(index, "visiting");
      for (const e of planned.edges) visit(e.index, e);
      state.set(index, "done");
      onDone?.(index);
    };
    for (const r of roots) visit(r);
  };
  walk(stages.map((_, i) => i));
  const order: number[] = [];
  walk([targetStage.index], (i) => order.push(i));
  return { staged, escape, stages, target: stages[targetStage.index] as PlannedStage, order, globalArgs, usedBuildArgs, namedContexts: named };
}

/**
 * planBuild for commands that do not build (check, parse): the same errors, except a FROM whose ARG is only set
 * at build time (`FROM $BASE` with no default), which is fine until a build leaves it empty, and stage-name problems
 * the checks already report as warnings.
 */
/** Problems check reports as warnings (DuplicateStageName, ReservedStageName) or that depend on build-time args. */
const PLAN_ONLY_AT_BUILD = new Set(["EMPTY_BASE", "DUPLICATE_STAGE", "RESERVED_STAGE_NAME"]);

export function checkPlan(parsed: ParsedDockerfile, opts: PlanOptions): void {
  try {
    planBuild(parsed, opts);
  } catch (e) {
    if (e instanceof TsbuildError && PLAN_ONLY_AT_BUILD.has(e.code)) return;
    throw e;
  }
}

/** stage index → the stages it reads (every stage of the Dockerfile, needed or not). */
export function stageDependencies(plan: BuildPlan): Map<number, Set<number>> {
  return new Map(plan.stages.map((s, i) => [i, new Set(s.edges.map((e) => e.index))]));
}
