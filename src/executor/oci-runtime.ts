// Executor over an OCI runtime (crun or runc): writes a private bundle with a generated config.json, runs the
// container with piped stdio in its own cgroup (device rules, pids and memory limits), and always deletes it
// afterwards; a watchdog kills it if tsbuild itself is killed, so no container outlives its RUN step.
import { containerName } from "./orphan-containers.js";
import { randomBytes } from "node:crypto";
import { access, chmod, constants, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { EnvironmentError } from "../errors.js";
import { errnoCode } from "../util/errno.js";
import { ensureRuntimeDir } from "../util/runtime-dir.js";
import { userNamespaceInfo } from "../util/user-namespace.js";
import { dirname, join } from "node:path";
import { detectCgroupLayout, runCgroupName, runtimeCgroupsPath, writableCgroupLayout, type CgroupLayout } from "./cgroups.js";
import { buildRuntimeConfig, runtimeConfigJson } from "./runtime-spec.js";
import { defaultResourceLimits, type ResourceLimits } from "./sandbox-policy.js";
import { spawnSandbox } from "./spawn-sandbox.js";
import { sandboxLauncher } from "./launcher.js";
import { armWatchdog, type Watchdog } from "./watchdog.js";
import { crunNeedsHybridWorkaround, defaultStateDir, execFailureStatus, runtimeBaseArgs, runWrapped, wrapped, wrappedArgv } from "./runtime-cli.js";

import type { Executor, ProcessIO, ProcessSpec, SandboxHooks } from "./types.js";
import { checkIds, prepareSandbox, type PreparedSandbox } from "./sandbox-setup.js";

export interface OciRuntimeOptions {
  /** The runtime's --root state directory; default /run/tsbuild/<runtime>, or the user's runtime dir when rootless. */
  stateDir?: string;
  limits?: ResourceLimits;
  hooks?: SandboxHooks;
}

export function ociRuntimeExecutor(runtime: "crun" | "runc", opts: OciRuntimeOptions = {}): Executor {
  const stateDir = opts.stateDir ?? defaultStateDir(runtime);
  const limits = opts.limits ?? defaultResourceLimits();
  let hybrid: Promise<boolean> | undefined;
  let layout: Promise<CgroupLayout | undefined> | undefined;
  let stateReady: Promise<void> | undefined;
  const launcher = sandboxLauncher();
  return {
    name: runtime,
    async run(spec: ProcessSpec, rootfs: string, io: ProcessIO, signal: AbortSignal) {
      checkIds(spec);
      // Once per executor (one build); a failure is not kept, so the next RUN reports it again.
      await (stateReady ??= ensureStateDir(runtime, stateDir).catch((e: unknown) => {
        stateReady = undefined;
        throw e;
      }));
      const id = randomBytes(8).toString("hex");
      const name = containerName(process.pid, id);
      // Rootless, only a delegated (writable) cgroup tree is usable; elsewhere RUN goes without cgroup limits.
      layout ??= detectCgroupLayout().then((l) => writableCgroupLayout(l, userNamespaceInfo().rootless));
      const cgroupsPath = runtimeCgroupsPath(await layout, runCgroupName(id));
      const base = runtimeBaseArgs(runtime, stateDir, cgroupsPath !== undefined);
      hybrid ??= runtime === "crun" ? crunNeedsHybridWorkaround() : Promise.resolve(false);
      const wrap = await hybrid;
      // Beside the rootfs (in the build's private scratch dir), so a later build can tell whose container it was.
      // mkdtemp makes it 0700: config.json may hold secret env vars.
      const bundle = await mkdtemp(join(dirname(rootfs), ".tsbuild-bundle-"));
      const hooks = opts.hooks ?? {};
      let sandbox: PreparedSandbox | undefined;
      let watchdog: Watchdog | undefined;
      let exited = false;
      try {
        sandbox = await prepareSandbox(spec, rootfs, bundle, hooks, signal);
        const net = await sandbox.network();
        const config = buildRuntimeConfig(sandbox.spec, rootfs, {
          files: sandbox.files,
          limits,
          ...(cgroupsPath ? { cgroupsPath } : userNamespaceInfo().rootless ? { noCgroupLimits: true } : {}),
          ...(hooks.seccomp && spec.security !== "insecure" ? { seccomp: await hooks.seccomp() } : {}),
          ...(runtime === "crun" && spec.security !== "insecure" ? await crunSeccompBpf(hooks) : {}),
          ...(net ? { netnsPath: net.nsPath } : {}),
          // A terminal: crun hands its own stdio on to the process, runc (in the foreground) only pipes, so runc
          // makes a pty of its own and relays it to the terminal it inherited.
          ...(io.inheritStdio && runtime === "runc" ? { terminal: true } : {}),
        });
        const configPath = join(bundle, "config.json");
        await writeFile(configPath, runtimeConfigJson(config), { mode: 0o600 });
        await chmod(configPath, 0o600);
        watchdog = armWatchdog(hooks.watchdog?.(), [
          wrappedArgv(wrap, [runtime, ...base, "kill", name, "KILL"]),
          wrappedArgv(wrap, [runtime, ...base, "delete", "-f", name]),
        ]);
        const cmd = wrapped(wrap, [runtime, ...base, "run", "--bundle", bundle, name]);
        // The runtime's own last words, to tell "cannot execute" (126/127, as docker reports them) from an exit 1.
        let tail = "";
        io.phase?.("setup");
        const result = await spawnSandbox({
          command: cmd.command,
          args: cmd.args,
          io: {
            ...io,
            stderr: (chunk) => {
              tail = (tail + Buffer.from(chunk).toString("utf8")).slice(-1024);
              io.stderr(chunk);
            },
          },
          signal,
          kill: async () => {
            await runWrapped(wrap, [runtime, ...base, "kill", name, "KILL"]);
          },
          launcher,
        });
        io.phase?.("runtime");
        // Exit codes from 125 up may be the runtime's own failure (or a signal): then make sure the container is gone.
        exited = result.exitCode < 125;
        return { exitCode: execFailureStatus(result.exitCode, tail) };
      } finally {
        // `run` removes the container when it returns; this covers aborts, setup failures and runtime crashes.
        if (!exited) await runWrapped(wrap, [runtime, ...base, "delete", "-f", name]);
        watchdog?.disarm();
        await sandbox?.release();
        await rm(bundle, { recursive: true, force: true });
        io.phase?.("teardown");
      }
    },
  };
}

/**
 * The build's seccomp program for crun's annotation; nothing where no BPF can be compiled for this arch (crun then
 * compiles linux.seccomp itself, as before).
 */
async function crunSeccompBpf(hooks: SandboxHooks): Promise<{ seccompBpf?: Buffer }> {
  if (!hooks.seccomp || !hooks.seccompBpf) return {};
  try {
    return { seccompBpf: await hooks.seccompBpf() };
  } catch (e) {
    if (e instanceof EnvironmentError && e.code === "SECCOMP_UNSUPPORTED") return {};
    throw e;
  }
}

/**
 * The runtime keeps its container state under `stateDir` (/run/tsbuild/<runtime>, or under the user's runtime dir):
 * made here, before anything is set up, so a missing or unwritable /run is one clear error rather than a raw errno.
 */
export async function ensureStateDir(runtime: "crun" | "runc", stateDir: string): Promise<void> {
  // A rootless build's runtime dir sits in a shared place (/tmp): it must be ours before anything goes in it.
  if (userNamespaceInfo().rootless) await ensureRuntimeDir(dirname(stateDir));
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    await access(stateDir, constants.W_OK | constants.X_OK);
  } catch (e) {
    const code = errnoCode(e) ?? "unknown error";
    const why: Record<string, string> = {
      EACCES: "permission denied",
      EPERM: "operation not permitted",
      EROFS: "the file system is read-only",
      ENOTDIR: "a component of the path is not a directory",
      EEXIST: "exists and is not a directory",
      ENOSPC: "no space left on the device",
    };
    throw new EnvironmentError("RUNTIME_STATE_DIR", `${runtime} cannot keep its container state in ${stateDir}: ${why[code] ?? code}`, {
      hint: `RUN with ${runtime} needs a writable ${stateDir} (as root: check /run is a writable tmpfs; rootless: check XDG_RUNTIME_DIR), or use --executor bwrap`,
      cause: e,
    });
  }
}
