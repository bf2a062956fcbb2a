// The stable JSON shape printed by `tsbuild parse --json` (documented in docs/parse-json.md).
import type { SyntaxInstruction, SyntaxTree } from "./types.js";

function instructionJson(i: SyntaxInstruction): Record<string, unknown> {
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

/**
 * The stages as the FROM lines mark them, without the instruction-level checks (stage names, instructions before
 * FROM, FROM's arity): those are `check`'s and `build`'s to report.
 */
function stagesJson(tree: SyntaxTree): Record<string, unknown>[] {
  const stages: Record<string, unknown>[] = [];
  for (const i of tree.instructions) {
    const current = stages[stages.length - 1];
    if (i.keyword !== "FROM") {
      if (current) current.instructionCount = (current.instructionCount as number) + 1;
      continue;
    }
    const named = i.args.length === 3 && (i.args[1] as string).toUpperCase() === "AS";
    // The last --platform wins, as in splitStages.
    const platform = i.flags.flatMap((f) => /^--platform=(.*)$/.exec(f)?.[1] ?? []).pop();
    stages.push({
      index: stages.length,
      name: named ? (i.args[2] as string).toLowerCase() : null,
      base: i.args[0] ?? "",
      platform: platform ?? null,
      instructionCount: 0,
    });
  }
  return stages;
}

export function parseResultToJson(tree: SyntaxTree): unknown {
  return {
    file: tree.file,
    directives: { syntax: tree.directives.syntax ?? null, escape: tree.directives.escape, check: tree.directives.check ?? null },
    instructions: tree.instructions.map(instructionJson),
    warnings: tree.warnings.map((w) => ({ code: w.code, message: w.message, range: w.range ?? null })),
    stages: stagesJson(tree),
  };
}
