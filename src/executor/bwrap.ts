// Executor over bubblewrap: the lightest sandbox (≈5 ms per process). Runs as real root without a user namespace
// so file ownership is exact; non-root users are entered through a static busybox `nsenter -S/-G` because bwrap
// itself only switches uid inside a user namespace. It gets the same policy as crun/runc (sandbox-policy.ts):
// Docker's capabilities and seccomp profile (as BPF), fresh device nodes, masked and read-only /proc paths, and a
// cgroup of ours for device rules and limits, which bwrap cannot set up itself. Arguments, environment included,
// reach bwrap through a private file descriptor, so secrets never appear on a command line.
import { userNamespaceInfo } from "../util/user-namespace.js";
import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { access, mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { EnvironmentError } from "../errors.js";
import { createRunCgroup, detectCgroupLayout, runCgroupName, type CgroupLayout, type RunCgroup } from "./cgroups.js";
import { DEFAULT_HOSTNAME } from "./hosts.js";
import { DEFAULT_DEVICES, DEFAULT_SHM_BYTES, defaultResourceLimits, sandboxGrants, type ResourceLimits, type Rlimit } from "./sandbox-policy.js";
import { findSetprivHelper, setprivArgs, type SetprivHelper } from "./setpriv-helper.js";
import { findOnPath } from "./select-executor.js";
import { spawnSandbox } from "./spawn-sandbox.js";
import { commandShell, type CommandShell } from "../util/command-shell.js";
import { armWatchdog, killCgroupCommands, type Watchdog } from "./watchdog.js";
import type { Executor, ProcessIO, ProcessSpec, SandboxHooks } from "./types.js";
import { parseEnvEntry } from "../image/env.js";
import { checkIds, prepareSandbox, type PreparedSandbox, type SandboxFiles } from "./sandbox-setup.js";

/** Static busybox used to drop to a non-root uid/gid inside the sandbox (package busybox-static). */
export const STATIC_BUSYBOX = "/bin/busybox";
/** Where the helper appears inside the sandbox: on bwrap's /dev tmpfs, so it never touches the rootfs. */
// Named "busybox" so the multi-call binary reads its argv[0] as itself and takes the applet from argv[1].
const HELPER_IN_SANDBOX = "/dev/.tsbuild/busybox";

export interface BwrapOptions {
  /** bwrap binary; default "bwrap" from PATH. */
  command?: string;
  limits?: ResourceLimits;
  hooks?: SandboxHooks;
}

/** Host-side files the sandbox's mounts come from, all in one private per-RUN directory. */
export interface BwrapFiles extends SandboxFiles {
  /** Directory holding fresh device nodes named as in DEFAULT_DEVICES (absent: bwrap's own --dev nodes are kept). */
  devDir?: string;
  /** An empty file and an empty directory to mask /proc and /sys paths with. */
  emptyFile?: string;
  emptyDir?: string;
}

export interface BwrapPolicy {
  /** Whether a device cgroup enforces Docker's device rules; without one, CAP_MKNOD is dropped. */
  devicesEnforced: boolean;
  /** Whether the seccomp program is passed on fd 4. */
  seccomp: boolean;
  /** Paths of MASKED_PATHS and READONLY_PATHS that exist on this kernel (masking a missing path would fail). */
  exists(path: string): boolean;
  /** setpriv bound into the sandbox: shrinks the bounding set and switches user (else busybox nsenter switches). */
  setpriv?: SetprivHelper;
  /** Size of /dev/shm in bytes (ResourceLimits.shmBytes); default DEFAULT_SHM_BYTES. */
  shmBytes?: number;
}

const DEFAULT_POLICY: BwrapPolicy = { devicesEnforced: false, seccomp: false, exists: existsSync };

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** bwrap's full argument list: options, `--`, then the command. */
export function bwrapArgs(spec: ProcessSpec, rootfs: string, files: BwrapFiles, policy: BwrapPolicy = DEFAULT_POLICY): string[] {
  const { options, command } = bwrapInvocation(spec, rootfs, files, policy);
  return [...options, "--", ...command];
}

/** Options (which carry the environment, so they go through a private fd) apart from the command to run. */
export function bwrapInvocation(
  spec: ProcessSpec,
  rootfs: string,
  files: BwrapFiles,
  policy: BwrapPolicy = DEFAULT_POLICY,
): { options: string[]; command: string[] } {
  // --as-pid-1: the command itself is pid 1 of its namespace (as under runc), so the parent-death signal bwrap gives
  // it takes the whole namespace down; with bwrap's own init in between, that init survived a killed tsbuild.
  const a: string[] = ["--die-with-parent", "--as-pid-1", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"];
  // "default" joins the user-mode network's namespace through nsenter before bwrap starts; "host" is the entitlement.
  if (spec.network === "none") a.push("--unshare-net");
  a.push("--hostname", spec.hostname ?? DEFAULT_HOSTNAME);
  const grants = sandboxGrants(spec.security);
  if (grants.hostDevices) {
    // --security=insecure: the host's devices and a writable /sys, as docker run --privileged.
    a.push("--dev-bind", rootfs, "/", "--proc", "/proc", "--dev-bind", "/dev", "/dev");
    a.push("--size", String(policy.shmBytes ?? DEFAULT_SHM_BYTES), "--tmpfs", "/dev/shm", "--bind", "/sys", "/sys");
  } else {
    // --bind (unlike --dev-bind) mounts nodev: a device node in the image or made by mknod cannot be opened.
    a.push("--bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev");
    // bwrap's --dev binds the host's own nodes read-write (a chmod would change the host's /dev/null): cover them.
    if (files.devDir) for (const d of DEFAULT_DEVICES) a.push("--dev-bind", join(files.devDir, d.path.slice("/dev/".length)), d.path);
    // --size applies to the next --tmpfs (bwrap 0.5.0 and later); without it the tmpfs could fill half the host's RAM.
    a.push("--size", String(policy.shmBytes ?? DEFAULT_SHM_BYTES), "--tmpfs", "/dev/shm", "--ro-bind", "/sys", "/sys");
  }
  for (const p of grants.maskedPaths) {
    if (!policy.exists(p)) continue;
    const src = isDir(p) ? files.emptyDir : files.emptyFile;
    if (src) a.push("--ro-bind", src, p);
  }
  // bwrap can only remount mount points read-only, and READONLY_PATHS are not: the whole of /proc goes read-only
  // (stricter than Docker, which leaves e.g. /proc/self/oom_score_adj writable).
  if (grants.readonlyPaths.some((p) => p.startsWith("/proc/"))) a.push("--remount-ro", "/proc");
  a.push("--ro-bind", files.hosts, files.hostsTarget ?? "/etc/hosts", "--ro-bind", files.resolvConf, files.resolvConfTarget ?? "/etc/resolv.conf");
  for (const m of spec.extraMounts ?? []) {
    if (m.type === "tmpfs") a.push("--tmpfs", m.destination);
    else a.push(m.readonly ? "--ro-bind" : "--bind", m.source, m.destination);
  }
  const dropUser = spec.uid !== 0 || spec.gid !== 0;
  const caps = grants.capabilities.filter((c) => c !== "CAP_MKNOD" || policy.devicesEnforced || grants.hostDevices);
  if (policy.setpriv) for (const [src, dest] of policy.setpriv.binds) a.push("--ro-bind", src, dest);
  else if (dropUser) a.push("--ro-bind", STATIC_BUSYBOX, HELPER_IN_SANDBOX);
  a.push("--cap-drop", "ALL");
  for (const c of caps) a.push("--cap-add", c);
  if (policy.seccomp && grants.seccomp) a.push("--seccomp", "4");
  a.push("--chdir", spec.cwd, "--clearenv");
  for (const kv of spec.env) {
    const [key, value] = parseEnvEntry(kv);
    if (key !== "") a.push("--setenv", key, value);
  }
  // setuid() away from 0 clears the capability sets, which is what Docker gives a non-root USER.
  if (policy.setpriv) return { options: a, command: [...policy.setpriv.command(setprivArgs(caps, spec)), ...spec.args] };
  const command = dropUser ? [HELPER_IN_SANDBOX, "nsenter", "-G", String(spec.gid), "-S", String(spec.uid), "--", ...spec.args] : [...spec.args];
  return { options: a, command };
}

/**
 * The launcher in front of bwrap. setpriv sets a parent-death SIGKILL (kept across the execs that follow), then the
 * shell checks tsbuild is still its parent — so a tsbuild killed at any moment, even before bwrap's own
 * --die-with-parent is in place, takes the sandbox with it — joins the cgroup (each `cgroup.procs` listed before
 * `--`) and execs the rest: the sandbox starts inside the cgroup.
 */
export function bwrapLauncher(parentPid: number, procsFiles: readonly string[], inner: readonly string[]): string[] {
  const script = `[ "$PPID" = "${parentPid}" ] || exit 125; while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"`;
  return ["setpriv", "--pdeathsig", "KILL", "--", "sh", "-c", script, "tsbuild-sandbox", ...procsFiles, "--", ...inner];
}

/**
 * util-linux prlimit's options for --ulimit values. bwrap has no rlimit option and the sandbox lacks
 * CAP_SYS_RESOURCE (so nothing inside may raise a hard limit): prlimit sets them on the host side and execs the
 * rest of the chain, and the RUN's command inherits them through bwrap's fork and exec.
 */
export function prlimitArgs(rlimits: readonly Rlimit[]): string[] {
  const v = (n: number) => (n === Infinity ? "unlimited" : String(n));
  return rlimits.map((r) => `--${r.name}=${v(r.soft)}:${v(r.hard)}`);
}

function settledValue<T>(r: PromiseSettledResult<T>): T {
  if (r.status === "rejected") throw r.reason;
  return r.value;
}

/**
 * Fresh device nodes named as in DEFAULT_DEVICES, made in `devDir` by the static busybox (node has no mknod), started
 * from the executor's command shell: a fork of node per RUN costs milliseconds.
 */
async function makeDeviceNodes(devDir: string, shell: CommandShell): Promise<void> {
  await mkdir(devDir);
  const made = await shell.run(STATIC_BUSYBOX, [
    "sh",
    "-c",
    DEFAULT_DEVICES.map((d) => `mknod -m ${d.mode.toString(8)} "$1/${d.path.slice(5)}" ${d.type} ${d.major} ${d.minor}`).join(" && "),
    "mkdev",
    devDir,
  ]);
  if (made.code !== 0) throw new EnvironmentError("RUNTIME_FAILED", `cannot create device nodes for RUN in ${devDir}: ${made.output.trim()}`);
}

export function bwrapExecutor(opts: BwrapOptions = {}): Executor {
  const command = opts.command ?? "bwrap";
  const limits = opts.limits ?? defaultResourceLimits();
  const hooks = opts.hooks ?? {};
  let layout: Promise<CgroupLayout | undefined> | undefined;
  let setpriv: Promise<SetprivHelper | undefined> | undefined;
  const shell = commandShell();
  return {
    name: "bwrap",
    async run(spec: ProcessSpec, rootfs: string, io: ProcessIO, signal: AbortSignal) {
      checkIds(spec);
      const rlimits = limits.rlimits ?? [];
      const prlimit = rlimits.length > 0 ? await findOnPath("prlimit") : undefined;
      if (rlimits.length > 0 && !prlimit)
        throw new EnvironmentError("NO_RUNTIME", "--ulimit under the bubblewrap executor needs util-linux's prlimit, which is not on PATH", {
          hint: "apt-get install -y util-linux, or use --executor crun",
        });
      await access(STATIC_BUSYBOX).catch((cause: unknown) => {
        throw new EnvironmentError("NO_RUNTIME", `the bubblewrap executor needs ${STATIC_BUSYBOX} to make device nodes and switch users`, {
          hint: "apt-get install -y busybox-static",
          cause,
        });
      });
      // Beside the rootfs, in the build's private scratch dir (0700): a filesystem that allows device nodes.
      const dir = await mkdtemp(join(dirname(rootfs), ".tsbuild-bwrap-"));
      let sandbox: PreparedSandbox | undefined;
      let cgroup: RunCgroup | undefined;
      let watchdog: Watchdog | undefined;
      const fds: { close(): Promise<void>; fd: number }[] = [];
      try {
        // Root of a rootless build's user namespace cannot mknod: bwrap's --dev binds the host's nodes then, which
        // that root cannot chmod or chown (they belong to host root), so they need no cover.
        const devDir = userNamespaceInfo().rootless ? undefined : join(dir, "dev");
        const emptyFile = join(dir, "empty");
        const emptyDir = join(dir, "empty.d");
        layout ??= detectCgroupLayout();
        const grants = sandboxGrants(spec.security);
        // Independent pieces of setup, side by side (the mknod helper is a process of its own); every one that
        // succeeded is kept where the finally below cleans it up, even when another failed.
        const settled = await Promise.allSettled([
          prepareSandbox(spec, rootfs, dir, hooks, signal),
          layout.then((l) => createRunCgroup(l, runCgroupName(randomBytes(8).toString("hex")), limits, grants.deviceRules)),
          devDir ? makeDeviceNodes(devDir, shell) : undefined,
          writeFile(emptyFile, "", { mode: 0o444 }).then(() => mkdir(emptyDir, { mode: 0o555 })),
          hooks.seccompBpf && grants.seccomp ? hooks.seccompBpf() : undefined,
          (setpriv ??= findSetprivHelper()),
        ]);
        if (settled[0].status === "fulfilled") sandbox = settled[0].value;
        if (settled[1].status === "fulfilled") cgroup = settled[1].value;
        for (const r of settled) if (r.status === "rejected") throw r.reason;
        const prepared = settledValue(settled[0]);
        const seccomp = settledValue(settled[4]);
        const setprivHelper = settledValue(settled[5]);
        const { options, command: sandboxed } = bwrapInvocation(
          prepared.spec,
          rootfs,
          {
            ...prepared.files,
            ...(devDir ? { devDir } : {}),
            emptyFile,
            emptyDir,
          },
          {
            devicesEnforced: cgroup?.devicesEnforced ?? false,
            seccomp: seccomp !== undefined,
            exists: existsSync,
            ...(limits.shmBytes !== undefined ? { shmBytes: limits.shmBytes } : {}),
            ...(setprivHelper ? { setpriv: setprivHelper } : {}),
          },
        );
        const argsFile = join(dir, "args");
        await writeFile(argsFile, options.map((x) => `${x}\0`).join(""), { mode: 0o600 });
        const argsFd = await open(argsFile, "r");
        fds.push(argsFd);
        await rm(argsFile);
        const stdioExtra: number[] = [argsFd.fd];
        if (seccomp) {
          const bpfFile = join(dir, "seccomp.bpf");
          await writeFile(bpfFile, seccomp, { mode: 0o600 });
          const bpfFd = await open(bpfFile, "r");
          fds.push(bpfFd);
          stdioExtra.push(bpfFd.fd);
        }
        const net = await prepared.network();
        const inner = [
          ...(prlimit ? [prlimit, ...prlimitArgs(rlimits), "--"] : []),
          ...(net ? ["nsenter", `--net=${net.nsPath}`, "--"] : []),
          command,
          "--args",
          "3",
          "--",
          ...sandboxed,
        ];
        const argv = bwrapLauncher(process.pid, cgroup?.procsFiles ?? [], inner);
        // If tsbuild dies before bwrap's --die-with-parent is in place in the command, the cgroup is killed instead.
        if (cgroup) watchdog = armWatchdog(hooks.watchdog?.(), killCgroupCommands(cgroup.procsFiles));
        io.phase?.("setup");
        const result = await spawnSandbox({
          command: argv[0] as string,
          args: argv.slice(1),
          extraFds: stdioExtra,
          io,
          signal,
          // --die-with-parent takes the whole pid namespace down with bwrap; the cgroup catches anything else.
          kill: async (child) => {
            child.kill("SIGKILL");
            await cgroup?.destroy();
          },
        });
        io.phase?.("runtime");
        return result;
      } finally {
        for (const f of fds) await f.close().catch(() => undefined);
        await cgroup?.destroy();
        watchdog?.disarm();
        await sandbox?.release();
        await rm(dir, { recursive: true, force: true });
        io.phase?.("teardown");
      }
    },
  };
}
