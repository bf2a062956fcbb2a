// Builds the OCI runtime config.json (runtime-spec 1.0.2) for one RUN process from the sandbox policy: Docker's
// default capabilities, seccomp profile, device rules, masked /proc paths, namespaces and limits, with generated
// /etc/hosts and /etc/resolv.conf bind-mounted read-only.
import type { ProcessSpec } from "./types.js";
import { DEFAULT_HOSTNAME } from "./hosts.js";
import { DEFAULT_SHM_BYTES, procText, RLIMIT_NAMES, sandboxGrants, type ResourceLimits } from "./sandbox-policy.js";
import { normalizeEnvList } from "../image/env.js";

export { DEFAULT_CAPABILITIES } from "./sandbox-policy.js";

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciRuntimeConfig {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[]; inheritable: string[]; ambient: string[] };
    /** Infinity stands for RLIM_INFINITY; runtimeConfigJson writes it as 2^64-1. */
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: {
    namespaces: { type: string; path?: string }[];
    maskedPaths: string[];
    readonlyPaths: string[];
    cgroupsPath?: string;
    resources: {
      devices: { allow: boolean; type?: string; major?: number; minor?: number; access: string }[];
      pids?: { limit: number };
      memory?: { limit: number; swap?: number };
    };
    seccomp?: unknown;
  };
}

/** What the executor decided outside the process spec: mount sources, limits, cgroup, seccomp, network. */
export interface RuntimeConfigOptions {
  files: { hosts: string; resolvConf: string; hostsTarget?: string; resolvConfTarget?: string };
  limits: ResourceLimits;
  cgroupsPath?: string;
  /** No cgroup can be made (a rootless RUN): leave out the pids and memory limits, which the runtime would fail on. */
  noCgroupLimits?: boolean;
  /** linux.seccomp in the runtime spec's form; undefined only for --security=insecure. */
  seccomp?: unknown;
  /** A network namespace to join for the default network (user-mode networking); absent: a new empty one. */
  netnsPath?: string;
  nofile?: number;
  /** process.terminal: the runtime makes a pty and relays it to its own stdio (runc's foreground `run -t`). */
  terminal?: boolean;
}

/**
 * The RLIMIT_NOFILE to request: Docker's 1048576, clamped to our own hard limit because raising it needs
 * CAP_SYS_RESOURCE, which the container does not get (the runtime then fails with EPERM).
 */
export function nofileLimit(procSelfLimits?: string): number {
  const wanted = 1048576;
  const text = procText("/proc/self/limits", procSelfLimits);
  if (text === undefined) return wanted;
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(text);
  const hard = m?.[1] === undefined || m[1] === "unlimited" ? wanted : Number(m[1]);
  return Number.isFinite(hard) && hard > 0 ? Math.min(wanted, hard) : wanted;
}

export function buildRuntimeConfig(spec: ProcessSpec, rootfs: string, opts: RuntimeConfigOptions): OciRuntimeConfig {
  const { files } = opts;
  const nofile = opts.nofile ?? nofileLimit();
  const grants = sandboxGrants(spec.security);
  const caps = [...grants.capabilities];
  // Like Docker, a non-root user keeps only the bounding set: runtimes set PR_SET_KEEPCAPS, so listing
  // effective/permitted caps here would hand uid 1000 CAP_CHOWN and friends.
  const privileged = spec.uid === 0;
  const mounts: OciMount[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    grants.hostDevices
      ? { destination: "/dev", type: "bind", source: "/dev", options: ["rbind", "nosuid"] }
      : { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", `size=${opts.limits.shmBytes ?? DEFAULT_SHM_BYTES}`],
    },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", grants.readonlySys ? "ro" : "rw"] },
    { destination: files.hostsTarget ?? "/etc/hosts", type: "bind", source: files.hosts, options: ["rbind", "ro", "nosuid", "nodev", "noexec"] },
    {
      destination: files.resolvConfTarget ?? "/etc/resolv.conf",
      type: "bind",
      source: files.resolvConf,
      options: ["rbind", "ro", "nosuid", "nodev", "noexec"],
    },
  ];
  for (const m of spec.extraMounts ?? []) {
    if (m.type === "tmpfs") {
      mounts.push({ destination: m.destination, type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777", ...(m.readonly ? ["ro"] : [])] });
    } else {
      mounts.push({ destination: m.destination, type: "bind", source: m.source, options: ["rbind", "nodev", m.readonly ? "ro" : "rw"] });
    }
  }
  const namespaces: { type: string; path?: string }[] = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  // "default" joins the user-mode network's namespace (outbound only, never the host's loopback); "none" gets an
  // empty one; "host" (an entitlement) shares the host's.
  if (spec.network === "default" && opts.netnsPath) namespaces.push({ type: "network", path: opts.netnsPath });
  else if (spec.network !== "host") namespaces.push({ type: "network" });
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: opts.terminal === true,
      user: { uid: spec.uid, gid: spec.gid, ...(spec.additionalGids?.length ? { additionalGids: spec.additionalGids } : {}) },
      args: spec.args,
      // A bare KEY is KEY= (BuildKit's reading), so runc/crun and bwrap give RUN the same environment.
      env: normalizeEnvList(spec.env),
      cwd: spec.cwd,
      capabilities: {
        bounding: caps,
        effective: privileged ? caps : [],
        permitted: privileged ? caps : [],
        inheritable: [],
        ambient: [],
      },
      rlimits: runtimeRlimits(opts.limits, nofile),
      noNewPrivileges: false,
    },
    root: { path: rootfs, readonly: false },
    hostname: spec.hostname ?? DEFAULT_HOSTNAME,
    mounts,
    linux: {
      namespaces,
      maskedPaths: [...grants.maskedPaths],
      readonlyPaths: [...grants.readonlyPaths],
      ...(opts.cgroupsPath ? { cgroupsPath: opts.cgroupsPath } : {}),
      resources: {
        devices: grants.deviceRules.map((r) => ({ ...r })),
        // Without a cgroup (rootless on a host that delegates none) limits cannot apply; runc fails rather than skip them.
        ...(opts.noCgroupLimits ? {} : { pids: { limit: opts.limits.pids } }),
        ...(opts.limits.memoryBytes !== undefined && !opts.noCgroupLimits ? { memory: { limit: opts.limits.memoryBytes } } : {}),
      },
      ...(opts.seccomp !== undefined && grants.seccomp ? { seccomp: opts.seccomp } : {}),
    },
  };
}

/** Docker's default RLIMIT_NOFILE, then the --ulimit values (which replace a default of the same name). */
function runtimeRlimits(limits: ResourceLimits, nofile: number): OciRuntimeConfig["process"]["rlimits"] {
  const out = new Map<string, { type: string; hard: number; soft: number }>([["RLIMIT_NOFILE", { type: "RLIMIT_NOFILE", hard: nofile, soft: nofile }]]);
  for (const r of limits.rlimits ?? []) out.set(RLIMIT_NAMES[r.name], { type: RLIMIT_NAMES[r.name], hard: r.hard, soft: r.soft });
  return [...out.values()];
}

const INFINITY_TOKEN = "\u0000RLIM_INFINITY\u0000";

/** config.json text: JSON, with unlimited rlimits as RLIM_INFINITY (18446744073709551615, beyond a JS number). */
export function runtimeConfigJson(config: OciRuntimeConfig): string {
  const text = JSON.stringify(config, (_k, v: unknown) => (v === Infinity ? INFINITY_TOKEN : v));
  return text.split(JSON.stringify(INFINITY_TOKEN)).join("18446744073709551615");
}
