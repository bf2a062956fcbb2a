// The generated /etc/hosts and /etc/resolv.conf every sandbox gets, and the mount-point stubs a runtime may leave
// in the rootfs when it bind-mounts onto paths the image lacks (the snapshot diff drops them, as BuildKit does).
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ProcessSpec } from "./types.js";

/** BuildKit's RUN hostname; scripts that print or check it see what they would under buildx. */
export const DEFAULT_HOSTNAME = "buildkitsandbox";

/** slirp4netns's fixed layout for its default 10.0.2.0/24: the RUN is 10.0.2.100, gateway .2, DNS .3 (a forwarder). */
export const RUN_NETWORK_RESOLV_CONF = "nameserver 10.0.2.3\n";

/**
 * The mount points of /dev, /proc and /sys, which runc creates (empty, 0755 root) when the image lacks them. BuildKit
 * keeps them in the RUN's layer (its stub cleaner only looks at the network files and the RUN's own mounts), so a
 * snapshot keeps them too; everything below them is a mount and never leaks.
 */
export const RUNTIME_MOUNT_POINTS: readonly string[] = ["dev", "proc", "sys"];

/**
 * Paths (relative to the rootfs) a runtime may create as empty mount points that BuildKit's MountStubsCleaner removes
 * again: the /etc/hosts and /etc/resolv.conf bind targets (plus /etc itself when the image has none). A snapshot
 * drops such a path when it was absent before the run and is an empty file or directory after it.
 */
export const EXECUTOR_MOUNT_STUBS: readonly string[] = ["etc", "etc/hosts", "etc/resolv.conf"];

/** EXECUTOR_MOUNT_STUBS plus the destinations (and their parents) of the spec's extra mounts. */
export function mountStubsFor(spec: Pick<ProcessSpec, "extraMounts">): string[] {
  const stubs = new Set(EXECUTOR_MOUNT_STUBS);
  for (const m of spec.extraMounts ?? []) {
    const parts = m.destination.split("/").filter((p) => p !== "" && p !== ".");
    for (let i = 1; i <= parts.length; i++) stubs.add(parts.slice(0, i).join("/"));
  }
  return [...stubs];
}

export function hostsFileContent(hostname: string, extra: readonly { host: string; ip: string }[] = []): string {
  return [`127.0.0.1\tlocalhost ${hostname}`, "::1\tlocalhost ip6-localhost ip6-loopback", ...extra.map((e) => `${e.ip}\t${e.host}`), ""].join("\n");
}

/** The host's resolv.conf; like Docker, fall back to public resolvers when the host has none. */
export async function resolvConfContent(): Promise<string> {
  try {
    return await readFile("/etc/resolv.conf", "utf8");
  } catch {
    return "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";
  }
}

/** Writes hosts and resolv.conf into `dir`; returns their paths for read-only bind mounts. */
export async function writeNetworkFiles(
  dir: string,
  hostname: string,
  resolvConf?: string,
  extraHosts: readonly { host: string; ip: string }[] = [],
): Promise<{ hosts: string; resolvConf: string }> {
  await mkdir(dir, { recursive: true });
  const hosts = join(dir, "hosts");
  const resolvPath = join(dir, "resolv.conf");
  await writeFile(hosts, hostsFileContent(hostname, extraHosts), { mode: 0o644 });
  await writeFile(resolvPath, resolvConf ?? (await resolvConfContent()), { mode: 0o644 });
  return { hosts, resolvConf: resolvPath };
}
