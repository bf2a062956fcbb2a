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

/** A container's name carries the pid of the build that made it (oci-runtime.ts): `tsbuild-<pid>-<hex>`. */
export function containerName(pid: number, id: string): string {
  return `tsbuild-${pid}-${id}`;
}

/** Whether every one of these container names belongs to a build that is still running (older names without a pid never do). */
async function allOwnersAlive(names: string[], alive: (pid: number) => Promise<boolean>): Promise<boolean> {
  for (const n of names) {
    const pid = /^tsbuild-(\d+)-[0-9a-f]+$/.exec(n)?.[1];
    if (pid === undefined || !(await alive(Number(pid)))) return false;
  }
  return true;
}

/**
 * Kills and deletes tsbuild containers for which `orphaned(bundle)` says so; returns how many. Cheap when none exist,
 * and when `alive` says every container's builder still runs (other builds' RUNs): then nothing is spawned.
 */
export async function reapOrphanContainers(orphaned: (bundle: string) => Promise<boolean>, alive?: (pid: number) => Promise<boolean>): Promise<number> {
  let reaped = 0;
  for (const runtime of ["crun", "runc"] as const) {
    const stateDir = defaultStateDir(runtime);
    // A rootless runtime dir sits in shared /tmp: never act on container state someone else planted there.
    if (userNamespaceInfo().rootless && !(await isOwnDir(dirname(stateDir)))) continue;
    // No spawn unless the state dir holds a container: this runs at the start of every build.
    const present = (await readdir(stateDir).catch(() => [] as string[])).filter((n) => n.startsWith("tsbuild-"));
    if (present.length === 0 || (alive && (await allOwnersAlive(present, alive)))) continue;
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
