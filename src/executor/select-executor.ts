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

export async function selectExecutor(pref: ExecutorPreference = "auto", opts: OciRuntimeOptions = {}): Promise<Executor> {
  const order: Exclude<ExecutorPreference, "auto">[] = pref === "auto" ? ["crun", "runc", "bwrap"] : [pref];
  for (const name of order) {
    if ((await findOnPath(PACKAGE[name].bin)) === undefined) continue;
    return name === "bwrap"
      ? bwrapExecutor({ ...(opts.limits ? { limits: opts.limits } : {}), ...(opts.hooks ? { hooks: opts.hooks } : {}) })
      : ociRuntimeExecutor(name, opts);
  }
  const install = order.map((n) => PACKAGE[n].pkg).join(" or ");
  throw new EnvironmentError(
    "NO_RUNTIME",
    pref === "auto"
      ? "RUN needs a container runtime: none of crun, runc or bwrap is on PATH; install one with `apt-get install -y crun` (or runc/bubblewrap)"
      : `RUN needs ${PACKAGE[pref].bin}, which is not on PATH: apt-get install -y ${install}`,
    { hint: `apt-get install -y ${pref === "auto" ? "crun" : install}` },
  );
}
