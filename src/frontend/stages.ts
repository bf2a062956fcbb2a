// Groups instructions into stages (FROM ... AS name) and finds a stage by name or index. The edges between stages
// (FROM, COPY/ADD --from, RUN --mount from=) are resolved by the build plan (plan.ts).
import { DockerfileParseError } from "../errors.js";
import { argWordRanges } from "./locate.js";
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
          throw new DockerfileParseError(
            "INVALID_STAGE_NAME",
            `invalid name for build stage: ${JSON.stringify(instr.args[2])}, name can't start with a number or contain symbols`,
            { range: nameRange },
          );
        if (RESERVED.has(name))
          throw new DockerfileParseError("RESERVED_STAGE_NAME", `stage name ${JSON.stringify(name)} is reserved`, {
            range: nameRange,
            hint: "pick another name",
          });
        const prev = names.get(name);
        if (prev)
          throw new DockerfileParseError("DUPLICATE_STAGE", `duplicate stage name ${JSON.stringify(name)}: first defined at line ${prev.range.start.line}`, {
            range: nameRange,
          });
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
    throw new DockerfileParseError("NO_FROM", "the Dockerfile has no FROM instruction", {
      range: parsed.instructions[0]?.range ?? { file: parsed.file, start: { line: 1, column: 1 }, end: { line: 1, column: 1 } },
    });
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
