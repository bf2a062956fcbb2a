// Executor over bubblewrap: the lightest sandbox (≈5 ms per process). Runs as real root without a user namespace
// so file ownership is exact; non-root users are entered through a static busybox `nsenter -S/-G` because bwrap
// itself only switches uid inside a user namespace. Weaker than the OCI path: no seccomp, and as real root bwrap
// leaves the capability bounding set full, so prefer crun/runc where they work.
import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EnvironmentError } from "../errors.js";
import { DEFAULT_HOSTNAME, writeNetworkFiles } from "./hosts.js";
import { DEFAULT_CAPABILITIES } from "./runtime-spec.js";
import { spawnSandbox } from "./spawn-sandbox.js";
import type { Executor, ProcessIO, ProcessSpec } from "./types.js";

/** Static busybox used to drop to a non-root uid/gid inside the sandbox (package busybox-static). */
export const STATIC_BUSYBOX = "/bin/busybox";
/** Where the helper appears inside the sandbox: on bwrap's /dev tmpfs, so it never touches the rootfs. */
// Named "busybox" so the multi-call binary reads its argv[0] as itself and takes the applet from argv[1].
const HELPER_IN_SANDBOX = "/dev/.tsbuild/busybox";

export interface BwrapOptions {
  /** bwrap binary; default "bwrap" from PATH. */
  command?: string;
}

export function bwrapArgs(spec: ProcessSpec, rootfs: string, files: { hosts: string; resolvConf: string }): string[] {
  const a: string[] = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"];
  if (spec.network === "none") a.push("--unshare-net");
  a.push("--hostname", spec.hostname ?? DEFAULT_HOSTNAME);
  a.push("--bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--ro-bind", "/sys", "/sys");
  a.push("--ro-bind", files.hosts, "/etc/hosts", "--ro-bind", files.resolvConf, "/etc/resolv.conf");
  for (const m of spec.extraMounts ?? []) {
    if (m.type === "tmpfs") a.push("--tmpfs", m.destination);
    else a.push(m.readonly ? "--ro-bind" : "--bind", m.source, m.destination);
  }
  const dropUser = spec.uid !== 0 || spec.gid !== 0;
  if (dropUser) a.push("--ro-bind", STATIC_BUSYBOX, HELPER_IN_SANDBOX);
  a.push("--cap-drop", "ALL");
  for (const c of DEFAULT_CAPABILITIES) a.push("--cap-add", c);
  a.push("--chdir", spec.cwd, "--clearenv");
  for (const kv of spec.env) {
    const eq = kv.indexOf("=");
    if (eq > 0) a.push("--setenv", kv.slice(0, eq), kv.slice(eq + 1));
  }
  a.push("--");
  // setuid() away from 0 clears the capability sets, which is what Docker gives a non-root USER.
  if (dropUser) a.push(HELPER_IN_SANDBOX, "nsenter", "-G", String(spec.gid), "-S", String(spec.uid), "--");
  a.push(...spec.args);
  return a;
}

export function bwrapExecutor(opts: BwrapOptions = {}): Executor {
  const command = opts.command ?? "bwrap";
  return {
    name: "bwrap",
    async run(spec: ProcessSpec, rootfs: string, io: ProcessIO, signal: AbortSignal) {
      if (spec.uid !== 0 || spec.gid !== 0) {
        await access(STATIC_BUSYBOX).catch((cause: unknown) => {
          throw new EnvironmentError("NO_RUNTIME", `running as uid ${spec.uid} under bubblewrap needs ${STATIC_BUSYBOX}`, {
            hint: "apt-get install -y busybox-static",
            cause,
          });
        });
      }
      const dir = await mkdtemp(join(tmpdir(), "tsbuild-bwrap-"));
      try {
        const files = await writeNetworkFiles(dir, spec.hostname ?? DEFAULT_HOSTNAME);
        return await spawnSandbox({
          command,
          args: bwrapArgs(spec, rootfs, files),
          io,
          signal,
          // --die-with-parent takes the whole pid namespace down with bwrap.
          kill: (child) => {
            child.kill("SIGKILL");
          },
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
