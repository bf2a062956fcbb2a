// `tsbuild build --call=METHOD[,format=json]`, buildx's frontend methods: build (the default), check (the build
// checks, as --check), outline (the args, secrets and ssh ids a target takes) and targets (the stages). outline and
// targets only parse and plan the Dockerfile: nothing is built and the store is never opened.
import { UsageError } from "../../errors.js";
import { locateDockerfile, readDockerfile } from "../../context/locate-dockerfile.js";
import { readDockerfileFromStdin } from "../inputs.js";
import type { CommandContext } from "../context.js";
import { parseDockerfile } from "../../frontend/parse.js";
import { listTargets, outlineBuild } from "../../frontend/outline.js";
import { formatOutline, formatTargets, goJsonIndent, outlineJson, targetsJson } from "../../frontend/outline-format.js";
import { hostPlatform } from "../../image/platform.js";
import { suggest } from "../../util/suggest.js";

export const CALL_METHODS = ["build", "check", "outline", "targets"] as const;
export type CallMethod = (typeof CALL_METHODS)[number];

export interface CallSpec {
  method: CallMethod;
  format: "text" | "json";
}

/** buildx's parseCallFunc: `NAME[,format=json]` (fields in any order). */
export function parseCall(value: string): CallSpec {
  let name: string | undefined;
  let format: CallSpec["format"] = "text";
  for (const field of value.split(",")) {
    const eq = field.indexOf("=");
    if (eq < 0) {
      if (name !== undefined) throw new UsageError("BAD_FLAG_VALUE", `--call ${value}: more than one method (${name}, ${field})`);
      name = field.trim();
      continue;
    }
    const key = field.slice(0, eq).trim();
    const v = field.slice(eq + 1).trim();
    if (key !== "format")
      throw new UsageError("BAD_FLAG_VALUE", `--call ${value}: unknown field ${JSON.stringify(field)}`, { hint: "e.g. --call=outline,format=json" });
    if (v !== "text" && v !== "json") throw new UsageError("BAD_FLAG_VALUE", `--call ${value}: format takes text or json, not ${JSON.stringify(v)}`);
    format = v;
  }
  const methods = CALL_METHODS.join(", ");
  if (!name) throw new UsageError("BAD_FLAG_VALUE", `--call ${value}: no method given`, { hint: `methods: ${methods}` });
  if (!(CALL_METHODS as readonly string[]).includes(name)) {
    const close = suggest(name, CALL_METHODS);
    throw new UsageError("BAD_FLAG_VALUE", `--call ${value}: unknown method ${JSON.stringify(name)}`, {
      hint: close ? `did you mean ${close}? (methods: ${methods})` : `methods: ${methods}`,
    });
  }
  return { method: name as CallMethod, format };
}

export interface CallInputs {
  /** -f as given ("-" reads stdin). */
  file?: string;
  /** The context argument, for the default CONTEXT/Dockerfile. */
  context: string;
  buildArgs: Record<string, string>;
  target?: string;
}

/** Prints the outline or the targets of the Dockerfile to stdout; errors are thrown with their Dockerfile position. */
export async function runCall(ctx: CommandContext, spec: CallSpec & { method: "outline" | "targets" }, inputs: CallInputs): Promise<number> {
  const fromStdin = inputs.file === "-";
  const loc = locateDockerfile(ctx.io.cwd, fromStdin ? undefined : inputs.file, inputs.context);
  const text = fromStdin ? await readDockerfileFromStdin(ctx.io.stdin, ctx.signal) : await readDockerfile(loc, ctx.signal);
  const parsed = parseDockerfile(text, { file: fromStdin ? "<stdin>" : loc.display });
  if (spec.method === "targets") {
    const targets = listTargets(parsed);
    ctx.io.stdout.write(spec.format === "json" ? goJsonIndent(targetsJson(targets, text)) + "\n" : formatTargets(targets));
    return 0;
  }
  const outline = outlineBuild(parsed, {
    buildArgs: inputs.buildArgs,
    ...(inputs.target !== undefined ? { target: inputs.target } : {}),
    platform: hostPlatform(),
  });
  ctx.io.stdout.write(spec.format === "json" ? goJsonIndent(outlineJson(outline, text)) + "\n" : formatOutline(outline));
  return 0;
}
