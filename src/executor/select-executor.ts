// Picks the sandbox for RUN: crun if installed, else runc, else bubblewrap; a clear EnvironmentError when none is.
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { EnvironmentError } from "../errors.js";
import { bwrapExecutor } from "./bwrap.js";
import { ociRuntimeExecutor, type OciRuntimeOptions } from "./oci-runtime.js";
import type { Executor } from "./types.js";

export type ExecutorPreference = "auto" | "crun" | "runc" | "bwrap";

const PACKAGE: Record<Exclude<ExecutorPreference, "auto">, { bin: string; pkg: string }> = {
  crun: { bin: "crun", pkg: "crun" },
  runc: { bin: "runc", pkg: "runc" },
  bwrap: { bin: "bwrap", pkg: "bubblewrap" },
};

/** Absolute path of `bin` on PATH, or undefined. */
export async function findOnPath(bin: string, path: string = process.env.PATH ?? ""): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, bin);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export type RuntimeName = Exclude<ExecutorPreference, "auto">;

/** The runtimes `pref` may use, in the order tried. */
export function runtimeOrder(pref: ExecutorPreference = "auto"): RuntimeName[] {
  return pref === "auto" ? ["crun", "runc", "bwrap"] : [pref];
}

/** The Debian package that installs a runtime. */
export function runtimePackage(name: RuntimeName): string {
  return PACKAGE[name].pkg;
}

/** The runtime `--executor pref` would use and where it is (undefined: none installed). Also `tsbuild doctor`'s answer. */
export async function findRuntime(
  pref: ExecutorPreference = "auto",
  path: string = process.env.PATH ?? "",
): Promise<{ name: RuntimeName; bin: string } | undefined> {
  for (const name of runtimeOrder(pref)) {
    const bin = await findOnPath(PACKAGE[name].bin, path);
    if (bin !== undefined) return { name, bin };
  }
  return undefined;
}

export async function selectExecutor(pref: ExecutorPreference = "auto", opts: OciRuntimeOptions = {}): Promise<Executor> {
  const found = await findRuntime(pref);
  if (found) {
    return found.name === "bwrap"
      ? bwrapExecutor({ ...(opts.limits ? { limits: opts.limits } : {}), ...(opts.hooks ? { hooks: opts.hooks } : {}) })
      : ociRuntimeExecutor(found.name, opts);
  }
  const install = runtimeOrder(pref)
    .map((n) => PACKAGE[n].pkg)
    .join(" or ");
  throw new EnvironmentError(
    "NO_RUNTIME",
    pref === "auto"
      ? "RUN needs a container runtime: none of crun, runc or bwrap is on PATH; install one with `apt-get install -y crun` (or runc/bubblewrap)"
      : `RUN needs ${PACKAGE[pref].bin}, which is not on PATH: apt-get install -y ${install}`,
    { hint: `apt-get install -y ${pref === "auto" ? "crun" : install}; run \`tsbuild doctor\` to check what else RUN needs here` },
  );
}
