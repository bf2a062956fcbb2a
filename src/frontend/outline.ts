// `build --call=outline|targets` (BuildKit's frontend.outline and frontend.targets subrequests): what a target takes
// (build args with their values and descriptions, secrets, ssh ids) and which stages can be targets. Pure: a parse
// and a plan, nothing built, no store. BuildKit's rules: dockerfile2llb/outline.go and instructions/parse.go.
import { posix } from "node:path";
import { TsbuildError, attachRange } from "../errors.js";
import { expandWord, expandWordWithInfo } from "./expand.js";
import { decodeInstruction } from "./instructions.js";
import { planBuild, predefinedArgs, type BuildPlan, type PlanOptions } from "./plan.js";
import { splitStages } from "./stages.js";
import type { ParsedDockerfile, SourceRange } from "./types.js";

export interface OutlineArg {
  name: string;
  /** From the comment above its ARG (`# NAME description`); "" when there is none. */
  description: string;
  /** Its value for this build (--build-arg, else the default); undefined when it has none. */
  value?: string;
  /** The ARG instruction that defines it. */
  range: SourceRange;
}

export interface OutlineMount {
  /** The secret id or ssh id. */
  name: string;
  required: boolean;
  /** The RUN that mounts it. */
  range: SourceRange;
}

export interface Outline {
  /** The target stage's name (`AS name`), if it has one. */
  name?: string;
  /** From the comment above the target's FROM (`# name description`). */
  description?: string;
  /** Sorted by line, as BuildKit sorts them. */
  args: OutlineArg[];
  secrets: OutlineMount[];
  ssh: OutlineMount[];
}

export interface Target {
  name?: string;
  /** The last stage: what a build without --target builds. */
  default: boolean;
  description?: string;
  /** FROM's base as written (not expanded). */
  base: string;
  /** FROM --platform as written. */
  platform?: string;
  range: SourceRange;
}

/**
 * BuildKit's getComment: the first of the comment lines above an instruction that starts with `NAME ` gives the
 * description (the rest of that line); "" when none does. Case-sensitive (stage names are lower case).
 */
export function describedBy(comments: readonly string[] | undefined, name: string | undefined): string {
  if (!name) return "";
  for (const line of comments ?? []) if (line.startsWith(`${name} `)) return line.slice(name.length + 1);
  return "";
}

/** Every stage, in order, with its description (BuildKit lists unnamed stages too; the last is the default). */
export function listTargets(parsed: ParsedDockerfile): Target[] {
  const stages = splitStages(parsed).stages;
  return stages.map((s, i) => {
    const description = describedBy(s.from.comments, s.name);
    return {
      ...(s.name ? { name: s.name } : {}),
      default: i === stages.length - 1,
      ...(description ? { description } : {}),
      base: s.base,
      ...(s.platform ? { platform: s.platform } : {}),
      range: s.from.range,
    };
  });
}

interface ArgInfo {
  arg: OutlineArg;
  /** Global ARGs whose values this one's default reads: used when it is. */
  deps: Set<string>;
}

/** What one stage contributes: the ARGs it can see, those it uses, and the secrets and ssh ids its RUNs mount. */
interface StageCapture {
  all: Map<string, ArgInfo>;
  used: Set<string>;
  secrets: Map<string, OutlineMount>;
  ssh: Map<string, OutlineMount>;
}

/**
 * The outline of the plan's target: the args, secrets and ssh ids of the target and of every stage it reads (FROM,
 * COPY --from, RUN --mount from=), each once (the target's own first), sorted by line. Fails as planBuild does
 * (an unknown target, an empty FROM, a cycle), at the same place: BuildKit plans the build for an outline too.
 */
export function outlineBuild(parsed: ParsedDockerfile, opts: PlanOptions): Outline {
  const plan = planBuild(parsed, opts);
  const buildArgs = opts.buildArgs instanceof Map ? opts.buildArgs : new Map(Object.entries(opts.buildArgs ?? {}));
  const globals = globalArgInfos(plan, opts, buildArgs);
  const captures = new Map<number, StageCapture>();
  for (const index of plan.order) captures.set(index, captureStage(plan, index, globals, buildArgs));

  const args: OutlineArg[] = [];
  const secrets: OutlineMount[] = [];
  const ssh: OutlineMount[] = [];
  const seen = { args: new Set<string>(), secrets: new Set<string>(), ssh: new Set<string>(), stages: new Set<number>() };
  const collect = (index: number): void => {
    if (seen.stages.has(index)) return;
    seen.stages.add(index);
    const c = captures.get(index) as StageCapture;
    for (const name of usedClosure(c)) {
      const info = c.all.get(name);
      if (info && !seen.args.has(name)) {
        seen.args.add(name);
        args.push(info.arg);
      }
    }
    for (const [id, m] of c.secrets) {
      if (seen.secrets.has(id)) continue;
      seen.secrets.add(id);
      secrets.push(m);
    }
    for (const [id, m] of c.ssh) {
      if (seen.ssh.has(id)) continue;
      seen.ssh.add(id);
      ssh.push(m);
    }
    // The base stage first, then the stages read by --from and --mount from=.
    const edges = (plan.stages[index] as BuildPlan["stages"][number]).edges;
    for (const e of edges) if (e.via === "FROM") collect(e.index);
    for (const e of edges) if (e.via !== "FROM") collect(e.index);
  };
  collect(plan.target.stage.index);
  const byLine = (a: { range: SourceRange }, b: { range: SourceRange }) => a.range.start.line - b.range.start.line;
  const target = plan.target.stage;
  const description = describedBy(target.from.comments, target.name);
  return {
    ...(target.name ? { name: target.name } : {}),
    ...(description ? { description } : {}),
    args: args.sort(byLine),
    secrets: secrets.sort(byLine),
    ssh: ssh.sort(byLine),
  };
}

/** BuildKit's markAllUsed: a used ARG makes the global ARGs its default reads used too. */
function usedClosure(c: StageCapture): Set<string> {
  const out = new Set<string>();
  const add = (name: string): void => {
    if (out.has(name)) return;
    out.add(name);
    for (const d of c.all.get(name)?.deps ?? []) add(d);
  };
  for (const name of c.used) add(name);
  return out;
}

function expandAt(word: string, env: Map<string, string>, escape: string, range: SourceRange): { value: string; used: string[] } {
  try {
    return expandWordWithInfo(word, env, { escape, range });
  } catch (e) {
    if (e instanceof TsbuildError) throw attachRange(e, range);
    throw e;
  }
}

/** The ARGs before the first FROM (BuildKit's buildMetaArgs): value, description, and the ARGs each default reads. */
function globalArgInfos(plan: BuildPlan, opts: PlanOptions, buildArgs: Map<string, string>): Map<string, ArgInfo> {
  const target = plan.target.stage;
  const env = predefinedArgs(opts.platform, target.name ?? String(target.index));
  const all = new Map<string, ArgInfo>();
  for (const instr of plan.staged.globalArgs) {
    const typed = decodeInstruction(instr);
    if (typed.kind !== "ARG") continue;
    for (const a of typed.args) {
      const arg: OutlineArg = { name: a.name, description: describedBy(instr.comments, a.name), range: instr.range };
      let deps = new Set<string>();
      const fromCli = buildArgs.get(a.name);
      if (fromCli !== undefined) arg.value = fromCli;
      else if (a.default !== undefined) {
        const r = expandAt(a.default, env, plan.escape, instr.range);
        arg.value = r.value;
        deps = new Set(r.used);
        // `ARG A=${A}-x` keeps what the earlier A read.
        if (deps.delete(a.name)) for (const d of all.get(a.name)?.deps ?? []) deps.add(d);
      }
      if (arg.value !== undefined) env.set(a.name, arg.value);
      all.set(a.name, { arg, deps });
    }
  }
  return all;
}

/** One stage's capture (BuildKit's dispatchState.outline): FROM's args, its ARG lines, its RUN secret/ssh mounts. */
function captureStage(plan: BuildPlan, index: number, globals: Map<string, ArgInfo>, buildArgs: Map<string, string>): StageCapture {
  const planned = plan.stages[index] as BuildPlan["stages"][number];
  const stage = planned.stage;
  const all = new Map(globals);
  const used = new Set<string>();
  for (const word of [stage.base, ...(stage.platform ? [stage.platform] : [])]) {
    try {
      for (const n of expandWordWithInfo(word, plan.globalArgs, { escape: plan.escape }).used) used.add(n);
    } catch {
      // A bad FROM word already failed the plan; a bad --platform fails the build, not the outline.
    }
  }
  const secrets = new Map<string, OutlineMount>();
  const ssh = new Map<string, OutlineMount>();
  // What the stage's instructions see, as far as the Dockerfile tells (a base image's ENV is not known here).
  const env = new Map<string, string>();
  for (const instr of stage.instructions) {
    const typed = planned.typed.get(instr);
    if (!typed) continue;
    if (typed.kind === "ARG") {
      for (const a of typed.args) {
        const fromCli = buildArgs.get(a.name);
        let value: string | undefined;
        // `ARG NAME` alone in a stage takes the global's value, and BuildKit keeps the global's definition for it.
        const inherited = fromCli === undefined && a.default === undefined && plan.globalArgs.has(a.name);
        if (inherited) value = plan.globalArgs.get(a.name);
        else if (fromCli !== undefined) value = fromCli;
        else if (a.default !== undefined) value = expandAt(a.default, env, plan.escape, instr.range).value;
        if (value !== undefined) env.set(a.name, value);
        if (!inherited)
          all.set(a.name, {
            arg: { name: a.name, description: describedBy(instr.comments, a.name), ...(value !== undefined ? { value } : {}), range: instr.range },
            deps: new Set(),
          });
        used.add(a.name);
      }
    } else if (typed.kind === "ENV") {
      const before = new Map(env);
      for (const p of typed.pairs) env.set(expandWord(p.key, before, { escape: plan.escape }), expandWord(p.value, before, { escape: plan.escape }));
    } else if (typed.kind === "RUN") {
      for (const raw of typed.mounts) {
        const m = mountId(raw.includes("$") ? safeExpand(raw, env, plan.escape) : raw);
        if (m?.type === "secret") secrets.set(m.id, { name: m.id, required: m.required, range: instr.range });
        if (m?.type === "ssh") ssh.set(m.id, { name: m.id, required: m.required, range: instr.range });
      }
    }
  }
  return { all, used, secrets, ssh };
}

function safeExpand(word: string, env: Map<string, string>, escape: string): string {
  try {
    return expandWord(word, env, { escape });
  } catch {
    return word;
  }
}

/**
 * The id a secret or ssh mount asks for (BuildKit's rules: a secret's id defaults to its target's base name, an ssh
 * mount's to "default") and whether it is required. Other mounts, and a secret with neither, give undefined: the
 * build reports those.
 */
function mountId(raw: string): { type: "secret" | "ssh"; id: string; required: boolean } | undefined {
  const opts = new Map<string, string | undefined>();
  for (const part of raw.split(",")) {
    const eq = part.indexOf("=");
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (key !== "") opts.set(key, eq < 0 ? undefined : part.slice(eq + 1).trim());
  }
  const type = opts.get("type");
  if (type !== "secret" && type !== "ssh") return undefined;
  const requiredText = opts.has("required") ? (opts.get("required") ?? "true").toLowerCase() : "false";
  const required = requiredText === "" || requiredText === "true" || requiredText === "1";
  const target = opts.get("target") ?? opts.get("dst") ?? opts.get("destination");
  const id = opts.get("id") || (type === "ssh" ? "default" : target ? posix.basename(target) : undefined);
  return id ? { type, id, required } : undefined;
}
