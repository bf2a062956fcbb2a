// Builds the OCI runtime config.json (runtime-spec 1.0.2) for one RUN process: Docker's default capabilities,
// masked /proc paths and namespaces, with generated /etc/hosts and /etc/resolv.conf bind-mounted read-only.
import { readFileSync } from "node:fs";
import type { ProcessSpec } from "./types.js";
import { DEFAULT_HOSTNAME } from "./hosts.js";

/** Docker's default capability set (moby oci/caps/defaults.go). */
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

const MASKED_PATHS = [
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
];
const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

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
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: {
    namespaces: { type: string }[];
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

/**
 * The RLIMIT_NOFILE to request: Docker's 1048576, clamped to our own hard limit because raising it needs
 * CAP_SYS_RESOURCE, which the container does not get (the runtime then fails with EPERM).
 */
export function nofileLimit(procSelfLimits?: string): number {
  const wanted = 1048576;
  let text = procSelfLimits;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/self/limits", "utf8");
    } catch {
      return wanted;
    }
  }
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(text);
  const hard = m?.[1] === undefined || m[1] === "unlimited" ? wanted : Number(m[1]);
  return Number.isFinite(hard) && hard > 0 ? Math.min(wanted, hard) : wanted;
}

export function buildRuntimeConfig(
  spec: ProcessSpec,
  rootfs: string,
  files: { hosts: string; resolvConf: string },
  nofile: number = nofileLimit(),
): OciRuntimeConfig {
  const caps = [...DEFAULT_CAPABILITIES];
  // Like Docker, a non-root user keeps only the bounding set: runtimes set PR_SET_KEEPCAPS, so listing
  // effective/permitted caps here would hand uid 1000 CAP_CHOWN and friends.
  const privileged = spec.uid === 0;
  const mounts: OciMount[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    { destination: "/etc/hosts", type: "bind", source: files.hosts, options: ["rbind", "ro", "nosuid", "nodev", "noexec"] },
    {
      destination: "/etc/resolv.conf",
      type: "bind",
      source: files.resolvConf,
      options: ["rbind", "ro", "nosuid", "nodev", "noexec"],
    },
  ];
  for (const m of spec.extraMounts ?? []) {
    if (m.type === "tmpfs") {
      mounts.push({ destination: m.destination, type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777", ...(m.readonly ? ["ro"] : [])] });
    } else {
      mounts.push({ destination: m.destination, type: "bind", source: m.source, options: ["rbind", m.readonly ? "ro" : "rw"] });
    }
  }
  const namespaces = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  // "default" and "host" share the host's network: there is no bridge/CNI here, and package managers must work.
  if (spec.network === "none") namespaces.push({ type: "network" });
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: spec.uid, gid: spec.gid, ...(spec.additionalGids?.length ? { additionalGids: spec.additionalGids } : {}) },
      args: spec.args,
      env: spec.env,
      cwd: spec.cwd,
      capabilities: {
        bounding: caps,
        effective: privileged ? caps : [],
        permitted: privileged ? caps : [],
        inheritable: [],
        ambient: [],
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: nofile, soft: nofile }],
      noNewPrivileges: false,
    },
    root: { path: rootfs, readonly: false },
    hostname: spec.hostname ?? DEFAULT_HOSTNAME,
    mounts,
    linux: { namespaces, maskedPaths: MASKED_PATHS, readonlyPaths: READONLY_PATHS },
  };
}
