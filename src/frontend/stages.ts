// Groups instructions into stages (FROM ... AS name) and finds the edges between them: FROM <stage>,
// COPY/ADD --from=<stage>, RUN --mount=...,from=<stage>. Names that are not stages are image references.
import { DockerfileParseError } from "../errors.js";
import { argWordRanges, flagRange } from "./locate.js";
import type { Instruction, ParsedDockerfile, Stage, StagedDockerfile } from "./types.js";

const RESERVED = new Set(["scratch", "context"]);

export function splitStages(parsed: ParsedDockerfile): StagedDockerfile {
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  const names = new Map<string, Stage>();
  for (const instr of parsed.instructions) {
    if (instr.keyword === "FROM") {
      const base = instr.args[0] as string;
      const stage: Stage = { index: stages.length, base, from: instr, instructions: [], range: instr.range };
      if (instr.args.length === 3) {
        const name = (instr.args[2] as string).toLowerCase();
        const nameRange = argWordRanges(instr)[2]?.range ?? instr.range;
        if (!/^[a-z][a-z0-9._-]*$/.test(name))
          throw new DockerfileParseError("INVALID_STAGE_NAME", `invalid name for build stage: ${JSON.stringify(instr.args[2])}, name can't start with a number or contain symbols`, { range: nameRange });
        if (RESERVED.has(name)) throw new DockerfileParseError("RESERVED_STAGE_NAME", `stage name ${JSON.stringify(name)} is reserved`, { range: nameRange, hint: "pick another name" });
        const prev = names.get(name);
        if (prev)
          throw new DockerfileParseError("DUPLICATE_STAGE", `duplicate stage name ${JSON.stringify(name)}: first defined at line ${prev.range.start.line}`, { range: nameRange });
        stage.name = name;
        names.set(name, stage);
      }
      for (const f of instr.flags) {
        const m = /^--platform=(.*)$/.exec(f);
        if (m) stage.platform = m[1] as string;
      }
      stages.push(stage);
      continue;
    }
    const current = stages[stages.length - 1];
    if (current) current.instructions.push(instr);
    else if (instr.keyword === "ARG") globalArgs.push(instr);
    else
      throw new DockerfileParseError("NO_FROM", `${instr.keyword} before the first FROM: only ARG may come before FROM`, {
        range: instr.range,
        hint: "start the Dockerfile (after any ARG lines) with FROM IMAGE",
      });
  }
  if (stages.length === 0)
    throw new DockerfileParseError("NO_FROM", "the Dockerfile has no FROM instruction", { range: parsed.instructions[0]?.range ?? { file: parsed.file, start: { line: 1, column: 1 }, end: { line: 1, column: 1 } } });
  return { globalArgs, stages };
}

/** A stage by name (case-insensitive) or by index. */
export function findStage(staged: StagedDockerfile, ref: string): Stage | undefined {
  const lower = ref.toLowerCase();
  const byName = staged.stages.find((s) => s.name === lower);
  if (byName) return byName;
  if (/^\d+$/.test(ref)) return staged.stages[Number(ref)];
  return undefined;
}

/** Raw stage references an instruction makes (before variable expansion). */
export function stageRefs(i: Instruction): string[] {
  const refs: string[] = [];
  if (i.keyword === "COPY" || i.keyword === "ADD")
    for (const f of i.flags) {
      const m = /^--from=(.*)$/.exec(f);
      if (m) refs.push(m[1] as string);
    }
  if (i.keyword === "RUN")
    for (const f of i.flags) {
      const m = /^--mount=(.*)$/.exec(f);
      if (!m) continue;
      for (const kv of (m[1] as string).split(",")) {
        const [k, v] = kv.split("=", 2);
        if (k === "from" && v) refs.push(v);
      }
    }
  return refs;
}

/** stage index → indices of the stages it reads. Referring to itself or a later stage is an error. */
export function stageDependencies(staged: StagedDockerfile): Map<number, Set<number>> {
  const deps = new Map<number, Set<number>>();
  for (const s of staged.stages) {
    const set = new Set<number>();
    const add = (ref: string, instr: Instruction, at = instr.range) => {
      if (ref.includes("$")) return; // resolved at build time, after expansion
      const target = findStage(staged, ref);
      if (!target) return; // an image reference
      if (target.index >= s.index)
        throw new DockerfileParseError("STAGE_ORDER", `stage ${JSON.stringify(ref)} is used before it is defined (or by itself): a stage can only use earlier stages`, { range: at });
      set.add(target.index);
    };
    if (!/^\d+$/.test(s.base)) add(s.base, s.from, argWordRanges(s.from)[0]?.range);
    for (const i of s.instructions)
      for (const r of stageRefs(i)) add(r, i, flagRange(i, i.flags.findIndex((f) => (f.startsWith("--from=") || f.startsWith("--mount=")) && f.includes(r))));
    deps.set(s.index, set);
  }
  return deps;
}
