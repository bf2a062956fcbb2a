// `tsbuild check`: run the build checks (lint rules) on a Dockerfile without building, like `docker build --check`.
// Exit 1 only when the Dockerfile asks for it (`# check=error=true`) and there are warnings.
import { UsageError } from "../../errors.js";
import { flagList, flagString, parseArgs } from "../args.js";
import { locateDockerfile, readDockerfile } from "../../context/locate-dockerfile.js";
import { parseBuildArgs } from "../inputs.js";
import { GLOBAL_FLAGS, type Command } from "../context.js";
import { codeFrame } from "../format.js";
import { parseDockerfile } from "../../frontend/parse.js";
import { checkPlan } from "../../frontend/plan.js";
import { hostPlatform } from "../../image/platform.js";
import { formatCheckWarning, runChecks, type CheckWarning } from "../../frontend/checks.js";

export const checkCommand: Command = {
  name: "check",
  usage: "tsbuild check [-f Dockerfile] [--build-arg KEY=VALUE] [--format text|json] [CONTEXT]",
  summary: "Run the build checks on a Dockerfile and print the warnings; see https://docs.docker.com/go/dockerfile/rule/ for the rules.",
  flags: [
    { name: "file", short: "f", type: "string", value: "PATH", help: "Dockerfile (default CONTEXT/Dockerfile)" },
    { name: "build-arg", type: "list", value: "KEY=VALUE", help: "set a build argument (repeatable); KEY alone takes it from the environment" },
    { name: "format", type: "string", value: "FORMAT", help: "text (default) or json" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "check");
    if (args.positionals.length > 1) throw new UsageError("BAD_ARGS", "`tsbuild check` takes at most one context directory");
    const format = flagString(args, "format") ?? "text";
    if (format !== "text" && format !== "json") throw new UsageError("BAD_FLAG_VALUE", `--format takes text or json, not ${JSON.stringify(format)}`);
    const buildArgs = parseBuildArgs(flagList(args, "build-arg"), ctx.io.env);
    const loc = locateDockerfile(ctx.io.cwd, flagString(args, "file"), args.positionals[0]);
    const text = await readDockerfile(loc, ctx.signal);
    const display = loc.display;
    const parsed = parseDockerfile(text, { file: display });
    const result = runChecks(parsed, { buildArgs });
    // The stage graph is checked as build checks it (unknown stage, cycle, --from=$VAR): same error, same place.
    checkPlan(parsed, { buildArgs, platform: hostPlatform() });
    const failed = result.errorOnWarnings && result.warnings.length > 0;

    if (format === "json") {
      ctx.io.stdout.write(JSON.stringify({ warnings: result.warnings.map(toJson), errorOnWarnings: result.errorOnWarnings }, null, 2) + "\n");
      return failed ? 1 : 0;
    }
    // The code frame reads the text already in hand: the warning's file is the display path.
    const source = (f: string) => (f === display ? text : undefined);
    for (const w of result.warnings) {
      ctx.io.stdout.write(formatCheckWarning(w) + "\n");
      if (w.range) {
        const frame = codeFrame(w.range, source);
        if (frame) ctx.io.stdout.write(frame + "\n");
      }
      ctx.io.stdout.write("\n");
    }
    const n = result.warnings.length;
    ctx.io.stdout.write(n === 0 ? "Check complete, no warnings found.\n" : `Check complete, ${n} ${n === 1 ? "warning has" : "warnings have"} been found!\n`);
    if (failed) ctx.io.stderr.write(`ERROR: the Dockerfile sets check=error=true and the checks found ${n} ${n === 1 ? "warning" : "warnings"}\n`);
    return failed ? 1 : 0;
  },
};

/** Stable key order and explicit nulls, so scripts can rely on the shape. */
function toJson(w: CheckWarning): { rule: string; message: string; url: string; range: CheckWarning["range"] | null } {
  return { rule: w.rule, message: w.message, url: w.url, range: w.range ?? null };
}
