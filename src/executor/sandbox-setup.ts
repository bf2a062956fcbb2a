// What every executor prepares the same way before it starts a sandbox: the ids it may run as, the default network
// (created while the rest is set up), the generated /etc/hosts and /etc/resolv.conf, and mount targets resolved
// inside the rootfs. The executors differ only in how they hand this to their runtime.
import { EnvironmentError } from "../errors.js";
import { DEFAULT_HOSTNAME, RUN_NETWORK_RESOLV_CONF, writeNetworkFiles } from "./hosts.js";
import { resolveMountTargets, resolveNetworkFileTarget } from "./mount-targets.js";
import { MAX_ID } from "./sandbox-policy.js";
import { unmappedUserError } from "../util/user-namespace.js";
import type { ProcessSpec, RunNetworkHandle, SandboxHooks } from "./types.js";

export interface SandboxFiles {
  hosts: string;
  resolvConf: string;
  /** Where the image's /etc/hosts and /etc/resolv.conf really are (resolved in the rootfs), when they may be mounted. */
  hostsTarget?: string;
  resolvConfTarget?: string;
}

export interface PreparedSandbox {
  /** The spec with every mount target resolved inside the rootfs. */
  spec: ProcessSpec;
  files: SandboxFiles;
  /** The default network's namespace (undefined for none/host); awaits its creation. */
  network(): Promise<RunNetworkHandle | undefined>;
  /** Releases the network; safe to call more than once, and after a failure. */
  release(): Promise<void>;
}

/** The default network's namespace; without a user-mode network we fail rather than share the host's. */
export async function defaultNetwork(hooks: SandboxHooks, signal: AbortSignal): Promise<RunNetworkHandle> {
  if (!hooks.network) {
    throw new EnvironmentError("NO_NETWORK", "RUN's default network needs a user-mode network (slirp4netns), and none is configured", {
      hint: "apt-get install -y slirp4netns, or use RUN --network=none",
    });
  }
  return hooks.network(signal);
}

/** Refuses ids the kernel would misread: (uid_t)-1 means "no change" to setuid(2), so it would stay root. */
export function checkIds(spec: Pick<ProcessSpec, "uid" | "gid">): void {
  if (spec.uid > MAX_ID || spec.gid > MAX_ID || spec.uid < 0 || spec.gid < 0) {
    throw new EnvironmentError("BAD_USER", `refusing to run as ${spec.uid}:${spec.gid}: ids range from 0 to ${MAX_ID}`);
  }
}

/** Prepares the shared part of a sandbox in `dir` (a private directory beside the rootfs). */
export async function prepareSandbox(spec: ProcessSpec, rootfs: string, dir: string, hooks: SandboxHooks, signal: AbortSignal): Promise<PreparedSandbox> {
  checkIds(spec);
  // Rootless: an id outside the user namespace would fail deep in the runtime ("setresuid: Invalid argument").
  const unmapped = unmappedUserError(spec.uid, [spec.gid, ...(spec.additionalGids ?? [])]);
  if (unmapped) throw unmapped;
  let net: RunNetworkHandle | undefined;
  let netReady: Promise<RunNetworkHandle> | undefined;
  if (spec.network === "default") {
    netReady = defaultNetwork(hooks, signal);
    netReady.catch(() => undefined); // handled where it is awaited; never an unhandled rejection meanwhile
  }
  const release = async () => {
    if (netReady && !net) net = await netReady.catch(() => undefined);
    const n = net;
    net = undefined;
    netReady = undefined;
    await n?.release();
  };
  try {
    const network = await writeNetworkFiles(
      dir,
      spec.hostname ?? DEFAULT_HOSTNAME,
      spec.network === "default" ? RUN_NETWORK_RESOLV_CONF : undefined,
      spec.extraHosts,
    );
    const hostsTarget = await resolveNetworkFileTarget(rootfs, "/etc/hosts");
    const resolvConfTarget = await resolveNetworkFileTarget(rootfs, "/etc/resolv.conf");
    const resolved = { ...spec, extraMounts: await resolveMountTargets(rootfs, spec.extraMounts ?? []) };
    return {
      spec: resolved,
      files: { ...network, ...(hostsTarget ? { hostsTarget } : {}), ...(resolvConfTarget ? { resolvConfTarget } : {}) },
      async network() {
        if (netReady && !net) net = await netReady;
        return net;
      },
      release,
    };
  } catch (e) {
    await release();
    throw e;
  }
}
