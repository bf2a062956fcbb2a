// Inputs several commands share: --build-arg values and locating/reading the Dockerfile relative to the CLI's cwd.
import { readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { BuildError, UsageError } from "../errors.js";
import { checkOutputDir } from "../store/output-file.js";
import { flagString, type ParsedArgs } from "./args.js";

/** `K=V` pairs; a bare `K` takes its value from the environment (skipped when unset), as docker build does. */
export function parseBuildArgs(values: string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of values) {
    const eq = kv.indexOf("=");
    if (eq === 0) throw new UsageError("BAD_FLAG_VALUE", `--build-arg ${JSON.stringify(kv)}: missing name before =`);
    if (eq < 0) {
      const v = env[kv];
      if (v !== undefined) out[kv] = v;
    } else out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

export interface DockerfileLocation {
  path: string;
  /** How messages name it: relative to the cwd when inside it. */
  display: string;
}

/** -f PATH, else CONTEXT/Dockerfile; both relative to the caller's cwd, not the process's. */
export function locateDockerfile(cwd: string, fileFlag: string | undefined, contextArg: string | undefined): DockerfileLocation {
  const path = resolve(cwd, fileFlag ?? join(contextArg ?? ".", "Dockerfile"));
  const rel = relative(cwd, path);
  return { path, display: rel === "" || rel.startsWith("..") ? path : rel };
}

export function readDockerfile(loc: DockerfileLocation): string {
  try {
    return readFileSync(loc.path, "utf8");
  } catch {
    throw new BuildError("DOCKERFILE_NOT_FOUND", `cannot read Dockerfile ${loc.display}`, { hint: "use -f PATH to pick another Dockerfile" });
  }
}

/**
 * The --root flag, checked: not empty, and a directory (or creatable below one), so a typo gives a message naming
 * the flag instead of an errno from deep inside the store. Undefined when not given (the default store is used).
 */
export async function storeRootFlag(args: ParsedArgs): Promise<string | undefined> {
  const root = flagString(args, "root");
  if (root === undefined) return undefined;
  if (root.trim() === "") throw new UsageError("BAD_FLAG_VALUE", "--root needs a directory, not an empty string");
  await checkOutputDir(resolve(root), { what: "--root" });
  return root;
}
