// What every RUN sandbox grants, whatever the executor: Docker's default capabilities, devices, masked and
// read-only /proc and /sys paths, and resource limits. crun/runc get it as config.json, bwrap as flags and cgroups.
import { readFileSync } from "node:fs";

/** Docker's default capability set (moby oci/caps/defaults.go); bwrap grants exactly these, never more. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** Docker's masked paths (moby oci/defaults.go): files get /dev/null over them, directories an empty read-only tmpfs. */
export const MASKED_PATHS: readonly string[] = [
  "/proc/asound",
  "/proc/acpi",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

/** Docker's read-only paths: writing a sysctl or sysrq from a RUN must never reach the host kernel. */
export const READONLY_PATHS: readonly string[] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

export interface DeviceNode {
  path: string;
  type: "c";
  major: number;
  minor: number;
  mode: number;
}

/** The device nodes a RUN's /dev holds (created fresh for each container, never the host's own nodes). */
export const DEFAULT_DEVICES: readonly DeviceNode[] = [
  { path: "/dev/null", type: "c", major: 1, minor: 3, mode: 0o666 },
  { path: "/dev/zero", type: "c", major: 1, minor: 5, mode: 0o666 },
  { path: "/dev/full", type: "c", major: 1, minor: 7, mode: 0o666 },
  { path: "/dev/random", type: "c", major: 1, minor: 8, mode: 0o666 },
  { path: "/dev/urandom", type: "c", major: 1, minor: 9, mode: 0o666 },
  { path: "/dev/tty", type: "c", major: 5, minor: 0, mode: 0o666 },
];

export interface DeviceRule {
  allow: boolean;
  type?: "a" | "c" | "b";
  /** Omitted: any. */
  major?: number;
  minor?: number;
  access: string;
}

/**
 * The device cgroup rules Docker applies (deny everything, then runc's default allow list): mknod of any node is
 * allowed (image builds create them), but only these devices can be opened.
 */
export const DEVICE_RULES: readonly DeviceRule[] = [
  { allow: false, access: "rwm" },
  { allow: true, type: "c", access: "m" },
  { allow: true, type: "b", access: "m" },
  { allow: true, type: "c", major: 1, minor: 3, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 5, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 7, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 8, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 9, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 0, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 1, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 2, access: "rwm" },
  { allow: true, type: "c", major: 136, access: "rwm" },
];

/** A rule in cgroup v1 `devices.allow`/`devices.deny` syntax ("c 1:3 rwm", "a *:* rwm"). */
export function deviceRuleLine(r: DeviceRule): string {
  const n = (v: number | undefined) => (v === undefined ? "*" : String(v));
  return `${r.type ?? "a"} ${n(r.major)}:${n(r.minor)} ${r.access}`;
}

export interface ResourceLimits {
  /** Maximum number of processes and threads in one RUN. */
  pids: number;
  /** Memory limit in bytes; undefined: none. */
  memoryBytes?: number;
  /** Size of the RUN's /dev/shm tmpfs in bytes (buildx's --shm-size); undefined: DEFAULT_SHM_BYTES. */
  shmBytes?: number;
  /** Process resource limits the RUN's command starts with (buildx's --ulimit); they replace the defaults per name. */
  rlimits?: Rlimit[];
}

/** Docker's and BuildKit's /dev/shm: 64 MiB. */
export const DEFAULT_SHM_BYTES = 64 * 1024 * 1024;

/** RLIM_INFINITY, written as `Infinity` here (2^64-1 has no exact JavaScript number). */
export type RlimitValue = number;

/** One resource limit by Docker's name ("nofile"), soft never above hard; Infinity is unlimited. */
export interface Rlimit {
  name: RlimitName;
  soft: RlimitValue;
  hard: RlimitValue;
}

/** Docker's --ulimit names (go-units) and the kernel's RLIMIT_* each stands for. */
export const RLIMIT_NAMES = {
  core: "RLIMIT_CORE",
  cpu: "RLIMIT_CPU",
  data: "RLIMIT_DATA",
  fsize: "RLIMIT_FSIZE",
  locks: "RLIMIT_LOCKS",
  memlock: "RLIMIT_MEMLOCK",
  msgqueue: "RLIMIT_MSGQUEUE",
  nice: "RLIMIT_NICE",
  nofile: "RLIMIT_NOFILE",
  nproc: "RLIMIT_NPROC",
  rss: "RLIMIT_RSS",
  rtprio: "RLIMIT_RTPRIO",
  rttime: "RLIMIT_RTTIME",
  sigpending: "RLIMIT_SIGPENDING",
  stack: "RLIMIT_STACK",
} as const;

export type RlimitName = keyof typeof RLIMIT_NAMES;

/** The rows of /proc/self/limits, by Docker's name. */
const PROC_LIMIT_ROWS: Record<RlimitName, string> = {
  core: "Max core file size",
  cpu: "Max cpu time",
  data: "Max data size",
  fsize: "Max file size",
  locks: "Max file locks",
  memlock: "Max locked memory",
  msgqueue: "Max msgqueue size",
  nice: "Max nice priority",
  nofile: "Max open files",
  nproc: "Max processes",
  rss: "Max resident set",
  rtprio: "Max realtime priority",
  rttime: "Max realtime timeout",
  sigpending: "Max pending signals",
  stack: "Max stack size",
};

const CAP_SYS_RESOURCE = 24;

/**
 * The first limit whose hard value is above ours when we cannot raise hard limits (no CAP_SYS_RESOURCE, as in an
 * unprivileged container): the runtime would fail with a bare EPERM at the first RUN, so say it before the build.
 */
export function rlimitBeyondOurs(rlimits: readonly Rlimit[], procSelfLimits?: string, procSelfStatus?: string): { limit: Rlimit; ours: number } | undefined {
  const status = procText("/proc/self/status", procSelfStatus);
  const capEff = status ? /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] : undefined;
  if (capEff === undefined || (BigInt(`0x${capEff}`) >> BigInt(CAP_SYS_RESOURCE)) & 1n) return undefined;
  const text = procText("/proc/self/limits", procSelfLimits) ?? "";
  for (const r of rlimits) {
    const row = new RegExp(`^${PROC_LIMIT_ROWS[r.name]}\\s+\\S+\\s+(\\S+)`, "m").exec(text);
    const hard = row?.[1] === undefined ? undefined : row[1] === "unlimited" ? Infinity : Number(row[1]);
    if (hard !== undefined && r.hard > hard) return { limit: r, ours: hard };
  }
  return undefined;
}

/**
 * Enough for parallel compilers and test runners, small enough that a fork bomb ends the step long before it
 * exhausts the host's pid space. `--pids-limit` changes it.
 */
export const DEFAULT_PIDS_LIMIT = 1024;

/** `given`, else the text of a /proc file, else undefined (a kernel without it). */
export function procText(path: string, given?: string): string | undefined {
  if (given !== undefined) return given;
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Three quarters of the machine's memory: a runaway RUN is OOM-killed inside its cgroup before the host suffers. */
export function defaultMemoryLimit(meminfo?: string): number | undefined {
  const text = procText("/proc/meminfo", meminfo);
  if (text === undefined) return undefined;
  const m = /^MemTotal:\s+(\d+) kB/m.exec(text);
  if (!m?.[1]) return undefined;
  return Math.floor((Number(m[1]) * 1024 * 3) / 4);
}

export function defaultResourceLimits(): ResourceLimits {
  const memoryBytes = defaultMemoryLimit();
  return { pids: DEFAULT_PIDS_LIMIT, ...(memoryBytes !== undefined ? { memoryBytes } : {}) };
}

/** How a RUN is sandboxed: Docker's defaults, or RUN --security=insecure (the security.insecure entitlement). */
export type SecurityMode = "sandbox" | "insecure";

/** Every capability by bit number (linux/capability.h up to CAP_CHECKPOINT_RESTORE = 40). */
export const ALL_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
];

/**
 * Docker's --privileged set: every capability we hold in our own bounding set (a capability we lack, e.g. in a
 * container that dropped CAP_SYS_RESOURCE, cannot be handed on, and the runtime would fail asking for it).
 */
export function insecureCapabilities(procSelfStatus?: string): string[] {
  const status = procText("/proc/self/status", procSelfStatus);
  const bnd = status ? /^CapBnd:\s*([0-9a-f]+)/m.exec(status)?.[1] : undefined;
  if (bnd === undefined) return [...ALL_CAPABILITIES];
  const mask = BigInt(`0x${bnd}`);
  return ALL_CAPABILITIES.filter((_c, bit) => (mask >> BigInt(bit)) & 1n);
}

/** What a RUN is granted in each security mode; every executor reads this one table. */
export interface SandboxGrants {
  /** Bounding set (and, for root, effective and permitted). */
  capabilities: readonly string[];
  maskedPaths: readonly string[];
  readonlyPaths: readonly string[];
  deviceRules: readonly DeviceRule[];
  /** Whether the seccomp profile applies. */
  seccomp: boolean;
  /** Whether /sys is read-only. */
  readonlySys: boolean;
  /** The host's /dev (every device, as --privileged) instead of a fresh /dev with DEFAULT_DEVICES. */
  hostDevices: boolean;
}

export function sandboxGrants(mode: SecurityMode = "sandbox", procSelfStatus?: string): SandboxGrants {
  if (mode === "insecure")
    return {
      capabilities: insecureCapabilities(procSelfStatus),
      maskedPaths: [],
      readonlyPaths: [],
      deviceRules: [{ allow: true, access: "rwm" }],
      seccomp: false,
      readonlySys: false,
      hostDevices: true,
    };
  return {
    capabilities: DEFAULT_CAPABILITIES,
    maskedPaths: MASKED_PATHS,
    readonlyPaths: READONLY_PATHS,
    deviceRules: DEVICE_RULES,
    seccomp: true,
    readonlySys: true,
    hostDevices: false,
  };
}

/** Linux reserves (uid_t)-1: setuid(4294967295) means "leave the id alone", so such a USER would run as root. */
export const MAX_ID = 0xfffffffe;
