// `tsbuild parse`: print a Dockerfile's syntax tree (text or the documented JSON shape) without building.
import { UsageError } from "../../errors.js";
import { flagBool, flagString, parseArgs } from "../args.js";
import { locateDockerfile, readDockerfile } from "../../context/locate-dockerfile.js";
import { GLOBAL_FLAGS, type Command } from "../context.js";
import { parseSyntax } from "../../frontend/parse.js";
import { parseResultToJson } from "../../frontend/parse-json.js";

export const parseCommand: Command = {
  name: "parse",
  usage: "tsbuild parse [-f Dockerfile] [--json] [CONTEXT]",
  summary: "Parse a Dockerfile and print its instructions; see docs/parse-json.md for the JSON shape.",
  flags: [
    { name: "file", short: "f", type: "string", value: "PATH", help: "Dockerfile (default CONTEXT/Dockerfile)" },
    { name: "json", type: "boolean", help: "print the parse result as JSON" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "parse");
    if (args.positionals.length > 1) throw new UsageError("BAD_ARGS", "`tsbuild parse` takes at most one context directory");
    const loc = locateDockerfile(ctx.io.cwd, flagString(args, "file"), args.positionals[0]);
    const text = await readDockerfile(loc, ctx.signal);
    const display = loc.display;
    // Only what BuildKit's parser rejects fails here; instruction-level errors are `check`'s and `build`'s to report.
    const parsed = parseSyntax(text, { file: display });
    if (flagBool(args, "json")) {
      ctx.io.stdout.write(JSON.stringify(parseResultToJson(parsed), null, 2) + "\n");
      return;
    }
    for (const i of parsed.instructions)
      ctx.io.stdout.write(
        `${display}:${i.range.start.line}: ${i.keyword} ${i.flags.join(" ")}${i.flags.length ? " " : ""}${i.json ? JSON.stringify(i.args) : i.args.join(" ")}\n`,
      );
    for (const w of parsed.warnings) ctx.io.stderr.write(`WARNING ${w.code}: ${w.message}${w.range ? ` (${w.range.file}:${w.range.start.line})` : ""}\n`);
  },
};
