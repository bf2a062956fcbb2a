// Per-RUN cgroups: where a container's cgroup goes (beneath our own, so the host's limits on us still apply), and,
// for bwrap, which has no cgroup support of its own, creating one with Docker's device rules and our limits.
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { access, constants, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseMountinfo } from "../util/mountinfo.js";
import { deviceRuleLine, DEVICE_RULES, type DeviceRule, type ResourceLimits } from "./sandbox-policy.js";
import { errnoCode } from "../util/errno.js";

/** cgroup v1 controllers a bwrap RUN is placed in. */
const V1_CONTROLLERS = ["pids", "memory", "devices", "freezer"] as const;
type V1Controller = (typeof V1_CONTROLLERS)[number];

export type CgroupLayout =
  { version: 1; mounts: Partial<Record<V1Controller, string>>; self: Partial<Record<V1Controller, string>> } | { version: 2; mount: string; self: string };

export interface CgroupSources {
  mountinfo: string;
  selfCgroup: string;
}

/** Reads the cgroup layout from /proc/self/mountinfo and /proc/self/cgroup; undefined when there is none usable. */
export function parseCgroupLayout(src: CgroupSources): CgroupLayout | undefined {
  const v1: Partial<Record<V1Controller, string>> = {};
  let v2: string | undefined;
  for (const { fsType, mountPoint, superOptions } of parseMountinfo(src.mountinfo)) {
    if (fsType === "cgroup2") {
      v2 ??= mountPoint;
      continue;
    }
    if (fsType !== "cgroup") continue;
    for (const c of V1_CONTROLLERS) if (superOptions.includes(c) && v1[c] === undefined) v1[c] = mountPoint;
  }
  const self: Record<string, string> = {};
  for (const line of src.selfCgroup.split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, ctrls, path] = m as unknown as [string, string, string];
    if (ctrls === "") self[""] = path;
    for (const c of ctrls.split(",")) if (c) self[c] = path;
  }
  if (v1.pids !== undefined || v1.devices !== undefined) {
    const selfV1: Partial<Record<V1Controller, string>> = {};
    for (const c of V1_CONTROLLERS) if (v1[c] !== undefined) selfV1[c] = self[c] ?? "/";
    return { version: 1, mounts: v1, self: selfV1 };
  }
  if (v2 !== undefined) return { version: 2, mount: v2, self: self[""] ?? "/" };
  return undefined;
}

export async function detectCgroupLayout(): Promise<CgroupLayout | undefined> {
  try {
    const [mountinfo, selfCgroup] = await Promise.all([readFile("/proc/self/mountinfo", "utf8"), readFile("/proc/self/cgroup", "utf8")]);
    return parseCgroupLayout({ mountinfo, selfCgroup });
  } catch {
    return undefined;
  }
}

/**
 * The layout when we may create run cgroups in it, else undefined. Real root always may; a rootless build only where
 * the host delegated a writable subtree (cgroup v2 under systemd), so on other hosts its RUNs get no cgroup limits.
 */
export async function writableCgroupLayout(layout: CgroupLayout | undefined, rootless: boolean): Promise<CgroupLayout | undefined> {
  if (!layout || !rootless) return layout;
  const dirs = layout.version === 2 ? [join(layout.mount, cgroupBase(layout))] : Object.values(layout.mounts).map((m) => join(m, cgroupBase(layout)));
  for (const d of dirs)
    if (
      !(await access(d, constants.W_OK).then(
        () => true,
        () => false,
      ))
    )
      return undefined;
  return layout;
}

/** Run cgroups are named for their owner, so the next build can tell a dead build's leftovers from a live one's. */
export function runCgroupName(id: string, pid: number = process.pid): string {
  return `run-${pid}-${id}`;
}

/**
 * The cgroupsPath to give crun/runc. On v1 it sits beneath our own memory cgroup (the controller whose limit matters
 * to the host); on v2 beneath the root, the only cgroup exempt from the no-internal-processes rule.
 */
export function runtimeCgroupsPath(layout: CgroupLayout | undefined, name: string): string | undefined {
  if (!layout) return undefined;
  return join(cgroupBase(layout), "tsbuild", name);
}

/** The cgroup path (the same in every v1 hierarchy) under which run cgroups go: `<base>/tsbuild/<name>`. */
function cgroupBase(layout: CgroupLayout): string {
  if (layout.version === 2) return "/";
  return layout.self.memory ?? layout.self.pids ?? "/";
}

export interface RunCgroup {
  /** `cgroup.procs` files the sandbox's first process must write its pid into before it execs the sandbox. */
  procsFiles: string[];
  /** Whether device rules are enforced (cgroup v1 devices controller). */
  devicesEnforced: boolean;
  /** SIGKILLs everything left in the cgroup, then removes it; safe to call more than once. */
  destroy(): Promise<void>;
}

function readProcsSync(procsFile: string): string {
  try {
    return readFileSync(procsFile, "utf8");
  } catch {
    return "";
  }
}

async function killAllIn(procsFile: string): Promise<number> {
  const text = await readFile(procsFile, "utf8").catch(() => "");
  let n = 0;
  for (const l of text.split("\n")) {
    const pid = Number(l);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      process.kill(pid, "SIGKILL");
      n++;
    } catch {
      // already gone
    }
  }
  return n;
}

async function removeDir(dir: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      // Synchronous, as the set-up: a cgroup directory goes in microseconds.
      rmdirSync(dir);
      return;
    } catch (e) {
      const code = errnoCode(e);
      if (code === "ENOENT") return;
      if (code !== "EBUSY") return;
      await killAllIn(join(dir, "cgroup.procs"));
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * Creates the per-RUN cgroup for an executor that cannot (bwrap), with Docker's device rules (v1) and `limits`.
 * Undefined when the host gives us no cgroup we can manage (then the executor drops CAP_MKNOD instead).
 */
export async function createRunCgroup(
  layout: CgroupLayout | undefined,
  name: string,
  limits: ResourceLimits,
  deviceRules: readonly DeviceRule[] = DEVICE_RULES,
): Promise<RunCgroup | undefined> {
  if (!layout || layout.version !== 1) return undefined;
  const dirs: { ctrl: V1Controller; dir: string }[] = [];
  const destroy = async () => {
    // The common case: the pid namespace's teardown already ended every process, so the cgroups just go.
    const left = dirs.map((d) => readProcsSync(join(d.dir, "cgroup.procs")));
    if (left.every((t) => t.trim() === "")) {
      for (const d of dirs.splice(0).reverse()) await removeDir(d.dir);
      return;
    }
    const freezer = dirs.find((d) => d.ctrl === "freezer");
    // Freeze first so nothing forks while we kill, then thaw so the SIGKILLs are delivered.
    if (freezer) await writeFile(join(freezer.dir, "freezer.state"), "FROZEN").catch(() => undefined);
    for (const d of dirs) await killAllIn(join(d.dir, "cgroup.procs"));
    if (freezer) await writeFile(join(freezer.dir, "freezer.state"), "THAWED").catch(() => undefined);
    for (const d of dirs.splice(0).reverse()) await removeDir(d.dir);
  };
  // Synchronous: cgroupfs files live in kernel memory and each call takes microseconds, where a thread-pool round trip
  // per open, write and close made the ~20 device rules cost milliseconds per RUN. One write per rule, in order; a
  // hierarchy that fails does not stop the others (destroy() removes what was made).
  let failed = false;
  for (const ctrl of V1_CONTROLLERS) {
    const mount = layout.mounts[ctrl];
    if (mount === undefined) continue;
    try {
      const dir = join(mount, cgroupBase(layout), "tsbuild", name);
      mkdirSync(dir, { recursive: true });
      dirs.push({ ctrl, dir });
      if (ctrl === "pids") writeFileSync(join(dir, "pids.max"), String(limits.pids));
      if (ctrl === "memory" && limits.memoryBytes !== undefined) writeFileSync(join(dir, "memory.limit_in_bytes"), String(limits.memoryBytes));
      if (ctrl === "devices") for (const r of deviceRules) writeFileSync(join(dir, r.allow ? "devices.allow" : "devices.deny"), deviceRuleLine(r));
    } catch {
      failed = true;
    }
  }
  if (failed) {
    await destroy();
    return undefined;
  }
  if (!dirs.some((d) => d.ctrl === "pids")) {
    await destroy();
    return undefined;
  }
  return { procsFiles: dirs.map((d) => join(d.dir, "cgroup.procs")), devicesEnforced: dirs.some((d) => d.ctrl === "devices"), destroy };
}

/** Removes run cgroups whose owning build died (kill -9): kills what is left in them and deletes them. */
export async function reapStaleRunCgroups(layout: CgroupLayout | undefined, alive: (pid: number) => boolean | Promise<boolean>): Promise<number> {
  if (!layout) return 0;
  const parents = layout.version === 2 ? [join(layout.mount, "tsbuild")] : Object.values(layout.mounts).map((m) => join(m, cgroupBase(layout), "tsbuild"));
  let reaped = 0;
  for (const parent of parents) {
    const names = await readdir(parent).catch(() => [] as string[]);
    for (const n of names) {
      const m = /^run-(\d+)-/.exec(n);
      if (!m || (await alive(Number(m[1])))) continue;
      await removeDir(join(parent, n));
      reaped++;
    }
  }
  return reaped;
}
