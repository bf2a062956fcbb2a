// Executor over an OCI runtime (crun or runc): writes a bundle with a generated config.json, runs the container
// with piped stdio, and always deletes it afterwards so no container outlives its RUN step.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, statfs, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeNetworkFiles, DEFAULT_HOSTNAME } from "./hosts.js";
import { buildRuntimeConfig } from "./runtime-spec.js";
import { runQuiet, spawnSandbox } from "./spawn-sandbox.js";
import type { Executor, ProcessIO, ProcessSpec } from "./types.js";

export interface OciRuntimeOptions {
  /** The runtime's --root state directory; default /run/tsbuild/<runtime>. */
  stateDir?: string;
}

export function defaultStateDir(runtime: "crun" | "runc"): string {
  return join("/run/tsbuild", runtime);
}

const TMPFS_MAGIC = 0x01021994;
const CGROUP2_MAGIC = 0x63677270;

/**
 * crun (≤1.8) refuses to start any container on a hybrid cgroup v1/v2 host whose v2 hierarchy has controllers,
 * even with --cgroup-manager=disabled. On such hosts we start crun in a private mount namespace without
 * /sys/fs/cgroup/unified, so it sees plain v1 and leaves cgroups alone.
 */
export async function crunNeedsHybridWorkaround(): Promise<boolean> {
  try {
    const root = await statfs("/sys/fs/cgroup");
    if (root.type !== TMPFS_MAGIC) return false;
    const unified = await statfs("/sys/fs/cgroup/unified");
    if (unified.type !== CGROUP2_MAGIC) return false;
    return (await readFile("/sys/fs/cgroup/unified/cgroup.controllers", "utf8")).trim() !== "";
  } catch {
    return false;
  }
}

export function ociRuntimeExecutor(runtime: "crun" | "runc", opts: OciRuntimeOptions = {}): Executor {
  const stateDir = opts.stateDir ?? defaultStateDir(runtime);
  let hybrid: Promise<boolean> | undefined;
  return {
    name: runtime,
    async run(spec: ProcessSpec, rootfs: string, io: ProcessIO, signal: AbortSignal) {
      const id = `tsbuild-${randomBytes(8).toString("hex")}`;
      // Beside the rootfs (in the build's scratch dir), so a later build can tell whose container it was.
      const bundle = await mkdtemp(join(dirname(rootfs), ".tsbuild-bundle-"));
      // We set no resource limits, and crun refuses hybrid cgroup v1/v2 hosts unless cgroups are left alone.
      const base = runtime === "crun" ? ["--root", stateDir, "--cgroup-manager=disabled"] : ["--root", stateDir];
      try {
        const files = await writeNetworkFiles(bundle, spec.hostname ?? DEFAULT_HOSTNAME);
        await writeFile(join(bundle, "config.json"), JSON.stringify(buildRuntimeConfig(spec, rootfs, files)));
        await mkdir(stateDir, { recursive: true, mode: 0o700 });
        const runArgs = [...base, "run", "--bundle", bundle, id];
        hybrid ??= runtime === "crun" ? crunNeedsHybridWorkaround() : Promise.resolve(false);
        const wrap = await hybrid;
        return await spawnSandbox({
          command: wrap ? "unshare" : runtime,
          args: wrap
            ? ["--mount", "--propagation", "private", "--", "sh", "-c", 'umount -l /sys/fs/cgroup/unified && exec "$0" "$@"', runtime, ...runArgs]
            : runArgs,
          io,
          signal,
          kill: async () => {
            await runQuiet(runtime, [...base, "kill", id, "KILL"]);
          },
        });
      } finally {
        // `run` removes the container on a normal exit; this covers aborts and runtime crashes.
        await runQuiet(runtime, [...base, "delete", "-f", id]);
        await rm(bundle, { recursive: true, force: true });
      }
    },
  };
}
