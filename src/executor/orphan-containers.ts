// Containers whose builder died (kill -9) keep running: the runtime's `run` is not tied to its parent. The next build
// finds them in the runtimes' state dirs by their bundle path and kills and deletes them.
import { readdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { isOwnDir } from "../util/runtime-dir.js";
import { userNamespaceInfo } from "../util/user-namespace.js";
import { crunNeedsHybridWorkaround, defaultStateDir, runtimeBaseArgs, runWrapped } from "./runtime-cli.js";

interface ListedContainer {
  id?: string;
  bundle?: string;
}

/** Kills and deletes tsbuild containers for which `orphaned(bundle)` says so; returns how many. Cheap when none exist. */
export async function reapOrphanContainers(orphaned: (bundle: string) => Promise<boolean>): Promise<number> {
  let reaped = 0;
  for (const runtime of ["crun", "runc"] as const) {
    const stateDir = defaultStateDir(runtime);
    // A rootless runtime dir sits in shared /tmp: never act on container state someone else planted there.
    if (userNamespaceInfo().rootless && !(await isOwnDir(dirname(stateDir)))) continue;
    // No spawn unless the state dir holds a container: this runs at the start of every build.
    const present = await readdir(stateDir).catch(() => [] as string[]);
    if (!present.some((n) => n.startsWith("tsbuild-"))) continue;
    const base = runtimeBaseArgs(runtime, stateDir, true);
    const wrap = runtime === "crun" && (await crunNeedsHybridWorkaround());
    const listed = await runWrapped(wrap, [runtime, ...base, "list", "--format", "json"]);
    if (listed.code !== 0) continue;
    let containers: ListedContainer[];
    try {
      containers = (JSON.parse(listed.stdout) as ListedContainer[] | null) ?? [];
    } catch {
      continue;
    }
    for (const c of containers) {
      if (!c.id?.startsWith("tsbuild-") || !c.bundle || !(await orphaned(c.bundle))) continue;
      await runWrapped(wrap, [runtime, ...base, "kill", c.id, "KILL"]);
      await runWrapped(wrap, [runtime, ...base, "delete", "-f", c.id]);
      await rm(c.bundle, { recursive: true, force: true });
      reaped++;
    }
  }
  return reaped;
}
