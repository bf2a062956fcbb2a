// The stable JSON shape printed by `tsbuild parse --json` (documented in docs/parse-json.md).
import type { Instruction, ParsedDockerfile } from "./types.js";
import { splitStages } from "./stages.js";

function instructionJson(i: Instruction): Record<string, unknown> {
  const out: Record<string, unknown> = {
    keyword: i.keyword,
    flags: i.flags,
    args: i.args,
    json: i.json,
    heredocs: i.heredocs.map((h) => ({ name: h.name, content: h.content, expand: h.expand, chomp: h.chomp, ...(h.fd !== undefined ? { fd: h.fd } : {}) })),
    original: i.original,
    range: i.range,
  };
  if (i.trigger) out.trigger = instructionJson(i.trigger);
  return out;
}

export function parseResultToJson(parsed: ParsedDockerfile): unknown {
  const staged = splitStages(parsed);
  return {
    file: parsed.file,
    directives: { syntax: parsed.directives.syntax ?? null, escape: parsed.directives.escape, check: parsed.directives.check ?? null },
    instructions: parsed.instructions.map(instructionJson),
    warnings: parsed.warnings.map((w) => ({ code: w.code, message: w.message, range: w.range ?? null })),
    stages: staged.stages.map((s) => ({
      index: s.index,
      name: s.name ?? null,
      base: s.base,
      platform: s.platform ?? null,
      instructionCount: s.instructions.length,
    })),
  };
}
