// Config-only instructions (ENV, LABEL, ARG, USER, CMD, ...): they change the image config and history, never files.
import { join } from "node:path";
import { BuildError } from "../errors.js";
import { type TypedInstruction } from "../frontend/instructions.js";
import type { SourceRange } from "../frontend/types.js";
import { type ImageConfig, type HistoryEntry } from "../image/types.js";
import { applyMetaInPlace, type MetaChange } from "./meta.js";
import { HISTORY_COMMENT, healthcheckHistory } from "./history.js";
import { expansionEnv, getEnv, type StageState } from "./stage-state.js";
import { expand, type BuildSession } from "./build-session.js";
import type { LayerKind } from "./step-planner.js";

export function addHistory(run: BuildSession, state: StageState, createdBy: string, emptyLayer: boolean): void {
  const h: HistoryEntry = { created: run.created, created_by: createdBy, comment: HISTORY_COMMENT };
  if (emptyLayer) h.empty_layer = true;
  (state.config.history ??= []).push(h);
}

export function meta(run: BuildSession, state: StageState, change: MetaChange, range: SourceRange): void {
  // In place: the stage owns its config, and a copy per instruction made long Dockerfiles quadratic.
  const r = applyMetaInPlace(state.config, change, state.cmdSet, range);
  if (r.cmdSet) state.cmdSet = true;
  if (r.createdBy !== undefined) addHistory(run, state, r.createdBy, true);
}

/** Config-only instructions: they change the image config and history, never files, and are not cached. */
export async function dispatch(run: BuildSession, state: StageState, t: Exclude<TypedInstruction, LayerKind>): Promise<void> {
  const range = t.src.range;
  const env = () => expansionEnv(state);
  const x = (w: string) => expand(run, w, env(), range);
  switch (t.kind) {
    case "ENV": {
      // Every substitution in one ENV sees the values from before the instruction.
      const e = env();
      const pairs = t.pairs.map((p) => ({ key: expand(run, p.key, e, range), value: expand(run, p.value, e, range) }));
      meta(run, state, { kind: "ENV", pairs }, range);
      for (const p of pairs) state.argsOverEnv?.delete(p.key);
      return;
    }
    case "LABEL": {
      const e = env();
      meta(run, state, { kind: "LABEL", pairs: t.pairs.map((p) => ({ key: expand(run, p.key, e, range), value: expand(run, p.value, e, range) })) }, range);
      return;
    }
    case "ARG": {
      const out: { name: string; value?: string }[] = [];
      for (const raw of t.args) {
        // A name with `$` is expanded first, as BuildKit does (`ARG ${N}=v` declares the ARG N names).
        const name = raw.name.includes("$") ? x(raw.name) : raw.name;
        if (!/^[^\s=$"']+$/.test(name))
          throw new BuildError("BAD_ARG", `invalid ARG name ${JSON.stringify(name)} (from ${JSON.stringify(raw.name)})`, { range });
        const a = { ...raw, name };
        const def = a.default !== undefined ? x(a.default) : undefined;
        const cli = run.buildArgs.get(a.name);
        if (cli !== undefined) run.usedBuildArgs.add(a.name);
        const value = cli ?? def ?? run.globalArgs.get(a.name);
        state.args.set(a.name, value);
        if (value !== undefined && getEnv(state.config, a.name) !== undefined) (state.argsOverEnv ??= new Set()).add(a.name);
        // History shows the Dockerfile's default (expanded), never a --build-arg override, as BuildKit writes it.
        out.push(def === undefined ? { name: a.name } : { name: a.name, value: def });
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
        meta(run, state, { kind: "HEALTHCHECK", health: { Test: ["NONE"] }, createdBy: healthcheckHistory({ Test: ["NONE"] }) }, range);
        return;
      }
      const test = t.json ? t.test : ["CMD-SHELL", t.test.join(" ")];
      const health: ImageConfig["config"]["Healthcheck"] = { Test: test };
      if (t.interval !== undefined) health.Interval = t.interval;
      if (t.timeout !== undefined) health.Timeout = t.timeout;
      if (t.startPeriod !== undefined) health.StartPeriod = t.startPeriod;
      if (t.startInterval !== undefined) health.StartInterval = t.startInterval;
      if (t.retries !== undefined) health.Retries = t.retries;
      meta(run, state, { kind: "HEALTHCHECK", health, createdBy: healthcheckHistory(health) }, range);
      return;
    }
    case "FROM":
      throw new BuildError("INTERNAL", "FROM inside a stage", { range });
  }
}
