// `tsbuild doctor`: what a build needs on this machine, each check ok / warning / missing with the fix. Every check is a
// small function of its inputs (PATH, a /proc tree, /etc, the store root), so tests run them against fake trees; the
// answers come from the modules that act on them (runtime choice, overlay probe, cgroup layout, binfmt handlers).
import { subordinateRanges } from "../util/subids.js";
import { access, constants, mkdir, mkdtemp, readFile, rm, stat, statfs } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { dirname, join, resolve } from "node:path";
import { buildablePlatforms } from "../executor/binfmt.js";
import { parseCgroupLayout, type CgroupSources } from "../executor/cgroups.js";
import { findOnPath, findRuntime, runtimeOrder, runtimePackage } from "../executor/select-executor.js";
import { formatPlatform } from "../image/platform.js";
import { probeOverlay, probeUsernsOverlay, type ProbeResult } from "../snapshot/snapshotter.js";
import { storeLayout } from "../store/layout.js";
import { defaultStoreRoot } from "../store/store-paths.js";
import { runQuiet } from "../util/run.js";

/** missing: a build cannot run (exit 1); warning: some builds or features will not work, or a fallback is used. */
export type CheckStatus = "ok" | "warning" | "missing";

export interface DoctorCheck {
  /** Stable id: runtime, network, userns, idmap, subids, overlay, overlay-userns, fuse-overlayfs, cgroups, binfmt, store, image-tools. */
  id: string;
  title: string;
  status: CheckStatus;
  /** One line: what was found, and what it means for a build. */
  detail: string;
  /** The command (or step) that fixes it; absent when ok. */
  fix?: string;
}

export interface DoctorReport {
  /** True when nothing required is missing: a build can run. */
  ok: boolean;
  uid: number;
  user: string;
  checks: DoctorCheck[];
}

export interface DoctorOptions {
  /** PATH and the store root come from here (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The store directory (default: the one the CLI would use for `env`). */
  storeRoot?: string;
  /** Whose build is checked (default: this process's). */
  uid?: number;
  user?: string;
  /** Roots of the trees read, for tests: /proc, /etc, /dev. */
  procRoot?: string;
  etcRoot?: string;
  devRoot?: string;
  /** Mount overlayfs to see whether it works (default true; false reports without trying). */
  probeMounts?: boolean;
}

const GIB = 1024 ** 3;

function check(id: string, title: string, status: CheckStatus, detail: string, fix?: string): DoctorCheck {
  return { id, title, status, detail, ...(fix !== undefined && status !== "ok" ? { fix } : {}) };
}

async function readTrimmed(path: string): Promise<string | undefined> {
  return (await readFile(path, "utf8").catch(() => undefined))?.trim();
}

async function accessible(path: string, mode: number): Promise<boolean> {
  return access(path, mode).then(
    () => true,
    () => false,
  );
}

/** Why a device node cannot be used, with its fix; undefined when it can. */
async function deviceProblem(node: string, module: string): Promise<{ why: string; fix: string } | undefined> {
  if (await accessible(node, constants.R_OK | constants.W_OK)) return undefined;
  if (
    !(await stat(node).then(
      () => true,
      () => false,
    ))
  )
    return { why: `${node} is missing`, fix: `modprobe ${module}` };
  return { why: `${node} is not readable and writable by this user`, fix: `chmod 0666 ${node} (as root)` };
}

/** The RUN sandbox `--executor auto` picks (select-executor's own choice), and the others installed. */
export async function checkRuntime(path: string): Promise<DoctorCheck> {
  const picked = await findRuntime("auto", path);
  if (!picked) {
    const pkgs = runtimeOrder("auto").map(runtimePackage).join(", ");
    return check(
      "runtime",
      "RUN runtime",
      "missing",
      `none of ${runtimeOrder("auto").join(", ")} is on PATH: RUN cannot run`,
      `apt-get install -y crun (or one of ${pkgs})`,
    );
  }
  const others: string[] = [];
  for (const n of runtimeOrder("auto")) if (n !== picked.name && (await findRuntime(n, path))) others.push(n);
  return check(
    "runtime",
    "RUN runtime",
    "ok",
    `${picked.name} (${picked.bin}) for --executor auto${others.length ? `; also installed: ${others.join(", ")}` : ""}`,
  );
}

/** slirp4netns and /dev/net/tun, for RUN's default network (--network=none|host need neither). */
export async function checkNetwork(path: string, devRoot = "/dev"): Promise<DoctorCheck> {
  const title = "RUN default network";
  const tool = await findOnPath("slirp4netns", path);
  if (!tool)
    return check(
      "network",
      title,
      "warning",
      "slirp4netns is not on PATH: RUN with the default network fails (--network=none|host work)",
      "apt-get install -y slirp4netns",
    );
  const tun = join(devRoot, "net/tun");
  const bad = await deviceProblem(tun, "tun");
  if (bad) return check("network", title, "warning", `${bad.why}: slirp4netns cannot make RUN's default network`, bad.fix);
  return check("network", title, "ok", `slirp4netns (${tool}) and ${tun}`);
}

/**
 * Whether this user may create user namespaces: max_user_namespaces, Debian's unprivileged_userns_clone and Ubuntu
 * 24.04's AppArmor restriction. Root builds do not use them, so as root a block is only a warning.
 */
export async function checkUserNamespaces(procRoot: string, uid: number, probe: boolean): Promise<DoctorCheck> {
  const title = "user namespaces";
  const sys = join(procRoot, "sys");
  const max = await readTrimmed(join(sys, "user/max_user_namespaces"));
  const clone = await readTrimmed(join(sys, "kernel/unprivileged_userns_clone"));
  const apparmor = await readTrimmed(join(sys, "kernel/apparmor_restrict_unprivileged_userns"));
  const blocked =
    max === undefined
      ? { why: "the kernel has no user namespaces (no /proc/sys/user/max_user_namespaces)", fix: "use a kernel built with CONFIG_USER_NS=y" }
      : Number(max) <= 0
        ? { why: `user.max_user_namespaces is ${max}`, fix: "sysctl -w user.max_user_namespaces=28633 (and set it in /etc/sysctl.d/)" }
        : uid !== 0 && clone === "0"
          ? { why: "kernel.unprivileged_userns_clone is 0", fix: "sysctl -w kernel.unprivileged_userns_clone=1 (and set it in /etc/sysctl.d/)" }
          : uid !== 0 && apparmor === "1"
            ? {
                why: "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)",
                fix: "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for node and the runtime",
              }
            : undefined;
  if (blocked) {
    return uid === 0
      ? check("userns", title, "warning", `${blocked.why}: root builds do not need them, rootless builds here fail`, blocked.fix)
      : check("userns", title, "missing", `${blocked.why}: a rootless build needs them`, blocked.fix);
  }
  if (uid !== 0 && probe) {
    // node itself as the command: it is there whatever PATH holds.
    const r = await runQuiet("unshare", ["-r", process.execPath, "-e", ""]);
    if (r.spawnError === "ENOENT")
      return check("userns", title, "warning", "cannot try one: unshare is not on PATH (the files in /proc/sys allow them)", "apt-get install -y util-linux");
    if (r.code !== 0) {
      const why = r.stderr.trim().split("\n").pop() || r.spawnError || `exit ${r.code}`;
      return check(
        "userns",
        title,
        "missing",
        `unshare -r fails (${why}): a rootless build needs a user namespace`,
        "allow unprivileged user namespaces (container runtime seccomp/AppArmor policy, or sysctl)",
      );
    }
  }
  return check("userns", title, "ok", `allowed (max_user_namespaces=${max})${uid === 0 ? "; root builds do not need them" : ""}`);
}

/** newuidmap/newgidmap (Debian uidmap), which map a rootless build's subordinate ids. */
export async function checkIdMapTools(path: string, uid: number): Promise<DoctorCheck> {
  const title = "newuidmap/newgidmap";
  if (uid === 0) return check("idmap", title, "ok", "not needed: running as root");
  const missing: string[] = [];
  for (const t of ["newuidmap", "newgidmap"]) if (!(await findOnPath(t, path))) missing.push(t);
  if (missing.length > 0)
    return check(
      "idmap",
      title,
      "warning",
      `${missing.join(" and ")} not on PATH: only one id is mapped, so files owned by other ids (chown, USER) fail`,
      "apt-get install -y uidmap",
    );
  return check("idmap", title, "ok", "found on PATH");
}

/** Total subordinate ids granted to `user` (by name or uid) in a subuid/subgid file's text. */
export function subordinateIdCount(text: string, user: string, uid: number): number {
  return subordinateRanges(text, user, uid).reduce((n, r) => n + r.count, 0);
}

/** Subordinate uid/gid ranges for this user in /etc/subuid and /etc/subgid (65536 ids cover every image). */
export async function checkSubordinateIds(etcRoot: string, uid: number, user: string): Promise<DoctorCheck> {
  const title = "subuid/subgid ranges";
  if (uid === 0) return check("subids", title, "ok", "not needed: running as root");
  const fix = `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user}`;
  const counts: Record<string, number> = {};
  for (const f of ["subuid", "subgid"]) counts[f] = subordinateIdCount((await readTrimmed(join(etcRoot, f))) ?? "", user, uid);
  const none = Object.keys(counts).filter((f) => counts[f] === 0);
  if (none.length > 0)
    return check(
      "subids",
      title,
      "warning",
      `no range for ${user} in ${none.map((f) => join(etcRoot, f)).join(" and ")}: only your own id is mapped, a chown to another id fails`,
      fix,
    );
  const small = Object.keys(counts).filter((f) => (counts[f] ?? 0) < 65536);
  if (small.length > 0)
    return check("subids", title, "warning", `${small.map((f) => `${f}: ${counts[f]} ids`).join(", ")} for ${user}: ids above that range fail`, fix);
  return check("subids", title, "ok", `${counts["subuid"]} uids, ${counts["subgid"]} gids for ${user}`);
}

function reasonOf(r: ProbeResult): string {
  return r.ok ? "" : r.reason;
}

/** The overlay snapshotter in the store's filesystem (the engine's own probe); without it RUN copies the rootfs. */
export async function checkOverlay(scratch: string, uid: number, probe: boolean, where = dirname(scratch)): Promise<DoctorCheck> {
  const title = "overlayfs snapshotter";
  if (uid !== 0) return check("overlay", title, "ok", "not used directly as non-root (see overlay in a user namespace)");
  if (!probe) return check("overlay", title, "ok", "not probed");
  const r = await probeOverlay(scratch);
  return r.ok
    ? check("overlay", title, "ok", `mounts in ${where}`)
    : check(
        "overlay",
        title,
        "warning",
        `cannot mount (${reasonOf(r)}): RUN falls back to copying the rootfs (slower)`,
        "put the store (--root) on ext4/xfs/btrfs, not on overlayfs or NFS",
      );
}

/** overlayfs inside a user namespace, as a rootless RUN mounts it (kernel 5.11+). */
export async function checkUsernsOverlay(scratch: string, uid: number, probe: boolean): Promise<DoctorCheck> {
  const title = "overlay in a user namespace";
  if (!probe) return check("overlay-userns", title, "ok", "not probed");
  const r = await probeUsernsOverlay(scratch);
  if (r.ok) return check("overlay-userns", title, "ok", "mounts (native overlayfs for rootless builds)");
  return uid === 0
    ? check("overlay-userns", title, "ok", `unavailable (${reasonOf(r)}); root builds do not need it`)
    : check(
        "overlay-userns",
        title,
        "warning",
        `cannot mount (${reasonOf(r)}): rootless RUN uses fuse-overlayfs or copies`,
        "use a kernel 5.11+, or apt-get install -y fuse-overlayfs",
      );
}

/** fuse-overlayfs and /dev/fuse: the rootless snapshotter where native overlay in a user namespace is not allowed. */
export async function checkFuseOverlayfs(path: string, devRoot = "/dev"): Promise<DoctorCheck> {
  const title = "fuse-overlayfs";
  const tool = await findOnPath("fuse-overlayfs", path);
  if (!tool)
    return check(
      "fuse-overlayfs",
      title,
      "warning",
      "not on PATH: a rootless build without native overlay copies the rootfs per RUN",
      "apt-get install -y fuse-overlayfs",
    );
  const fuse = join(devRoot, "fuse");
  const bad = await deviceProblem(fuse, "fuse");
  if (bad) return check("fuse-overlayfs", title, "warning", `${tool} found, but ${bad.why}`, bad.fix);
  return check("fuse-overlayfs", title, "ok", `${tool} and ${fuse}`);
}

/** The cgroup layout RUN's limits use (cgroups.ts's detection): v1 or v2, or none (no pids/memory limits). */
export function checkCgroups(src: CgroupSources | undefined, uid: number): DoctorCheck {
  const title = "cgroups";
  const layout = src ? parseCgroupLayout(src) : undefined;
  if (!layout)
    return check(
      "cgroups",
      title,
      "warning",
      "no cgroup filesystem: RUN runs without pids/memory limits",
      "mount cgroup2 on /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)",
    );
  if (layout.version === 2) return check("cgroups", title, "ok", `cgroup v2 at ${layout.mount}`);
  const ctrls = Object.keys(layout.mounts).join(", ");
  if (uid !== 0)
    return check(
      "cgroups",
      title,
      "warning",
      `cgroup v1 (${ctrls}): a rootless RUN gets no resource limits`,
      "boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1) and systemd user delegation",
    );
  return check("cgroups", title, "ok", `cgroup v1 (${ctrls})`);
}

/** Platforms RUN can run: native ones and those with a usable binfmt_misc emulator (binfmt.ts's answer). */
export async function checkBinfmt(binfmtDir: string): Promise<DoctorCheck> {
  const title = "other platforms (binfmt)";
  const b = await buildablePlatforms(binfmtDir);
  const native = formatPlatform(b.host);
  const fix = "apt-get install -y qemu-user-static (it registers /proc/sys/fs/binfmt_misc handlers with the F flag)";
  if (b.unusable.length > 0)
    return check("binfmt", title, "warning", `unusable handlers: ${b.unusable.map((u) => `${u.handler.name} (${u.why})`).join(", ")}`, fix);
  if (b.emulated.length === 0) return check("binfmt", title, "warning", `only ${native} natively: RUN for another --platform fails`, fix);
  return check("binfmt", title, "ok", `${native} natively; emulated: ${b.emulated.map((e) => formatPlatform(e.platform)).join(", ")}`);
}

/** The store directory (or, before the first build, the nearest directory it would be made in): writable, free space. */
export async function checkStore(root: string): Promise<DoctorCheck> {
  const title = "store";
  let dir = resolve(root);
  while (
    !(await stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    )) &&
    dirname(dir) !== dir
  )
    dir = dirname(dir);
  const fix = `--root DIR (or TSBUILD_ROOT=DIR): a directory you own, on a filesystem with space`;
  if (!(await accessible(dir, constants.W_OK | constants.X_OK)))
    return check("store", title, "missing", `${dir === root ? root : `${dir} (where ${root} would be made)`} is not writable`, fix);
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  const where = `${root}${dir === root ? "" : " (not yet made)"}`;
  const freeText = `${(free / GIB).toFixed(1)} GiB free`;
  if (free < GIB) return check("store", title, "warning", `${where}: only ${freeText}, large builds fail with DISK_FULL`, `tsbuild prune, or ${fix}`);
  return check("store", title, "ok", `${where}, ${freeText}`);
}

/** skopeo and umoci: only scripts/make-busybox-base.sh (the base image recipe) uses them. */
export async function checkImageTools(path: string): Promise<DoctorCheck> {
  const title = "skopeo/umoci (optional)";
  const missing: string[] = [];
  for (const t of ["skopeo", "umoci"]) if (!(await findOnPath(t, path))) missing.push(t);
  if (missing.length > 0)
    return check(
      "image-tools",
      title,
      "warning",
      `${missing.join(", ")} not on PATH: only the base image recipe (scripts/make-busybox-base.sh) needs them`,
      `apt-get install -y ${missing.join(" ")}`,
    );
  return check("image-tools", title, "ok", "found (for the base image recipe)");
}

async function readCgroupSources(procRoot: string): Promise<CgroupSources | undefined> {
  try {
    const [mountinfo, selfCgroup] = await Promise.all([readFile(join(procRoot, "self/mountinfo"), "utf8"), readFile(join(procRoot, "self/cgroup"), "utf8")]);
    return { mountinfo, selfCgroup };
  } catch {
    return undefined;
  }
}

/** A private temp dir for the mount probes: in the store's tmp dir when the store exists (its filesystem is what counts). */
async function probeDir(storeRoot: string): Promise<string> {
  const tmp = storeLayout(storeRoot).tmpDir;
  if (
    await stat(storeRoot).then(
      () => true,
      () => false,
    )
  ) {
    try {
      await mkdir(tmp, { recursive: true });
      return await mkdtemp(storeLayout(storeRoot).tmpPrefix("doctor"));
    } catch {
      // not writable: the store check says so; probe where we can
    }
  }
  return mkdtemp(join(tmpdir(), "tsbuild-doctor-"));
}

/** Runs every check; `ok` is false when something a build needs is missing. */
export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
  const env = opts.env ?? process.env;
  const path = env["PATH"] ?? "";
  const uid = opts.uid ?? process.getuid?.() ?? 0;
  const user = opts.user ?? userInfo().username;
  const procRoot = opts.procRoot ?? "/proc";
  const devRoot = opts.devRoot ?? "/dev";
  const storeRoot = resolve(opts.storeRoot ?? defaultStoreRoot(env));
  const probe = opts.probeMounts ?? true;
  const scratch = probe ? await probeDir(storeRoot) : join(tmpdir(), "tsbuild-doctor-unprobed");
  try {
    const checks = [
      await checkRuntime(path),
      await checkNetwork(path, devRoot),
      await checkUserNamespaces(procRoot, uid, probe),
      await checkIdMapTools(path, uid),
      await checkSubordinateIds(opts.etcRoot ?? "/etc", uid, user),
      await checkOverlay(join(scratch, "overlay"), uid, probe, scratch.startsWith(storeRoot + "/") ? storeRoot : tmpdir()),
      await checkUsernsOverlay(join(scratch, "userns"), uid, probe),
      await checkFuseOverlayfs(path, devRoot),
      checkCgroups(await readCgroupSources(procRoot), uid),
      await checkBinfmt(join(procRoot, "sys/fs/binfmt_misc")),
      await checkStore(storeRoot),
      await checkImageTools(path),
    ];
    return { ok: checks.every((c) => c.status !== "missing"), uid, user, checks };
  } finally {
    if (probe) await rm(scratch, { recursive: true, force: true });
  }
}
