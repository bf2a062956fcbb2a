// The per-build services every executor asks for: Docker's seccomp profile (converted once per build, in the
// runtime spec's form and as BPF for bwrap and crun), the user-mode network behind RUN's default network, and the
// watchdog shell that cleans up after a RUN whose tsbuild died.
import { AbortError, EnvironmentError } from "../errors.js";
import { DEFAULT_CAPABILITIES } from "./sandbox-policy.js";
import type { OciSeccomp } from "./seccomp-profile.js";
import type { RunNetwork } from "./run-network.js";
import type { SandboxHooks } from "./types.js";
import { startWatchdogService, type WatchdogService } from "./watchdog.js";

export interface SandboxHooksOptions {
  /** A seccomp profile file instead of Docker's default (tests, or a site policy). */
  seccompProfile?: string;
}

/** Hooks plus close(): the build awaits it before it ends, and the shared network is gone after it. */
export interface BuildSandboxHooks extends SandboxHooks {
  close(): Promise<void>;
}

export function sandboxHooks(opts: SandboxHooksOptions = {}): BuildSandboxHooks {
  const closing = new AbortController();
  let shared: Promise<RunNetwork> | undefined;
  let seccomp: Promise<OciSeccomp> | undefined;
  let bpf: Promise<Buffer> | undefined;
  let watchdog: WatchdogService | undefined;
  // The profile, the syscall tables and the network code load on the first RUN: a build that hits every step never
  // pays for them.
  const oci = () =>
    (seccomp ??= import("./seccomp-profile.js").then(async ({ loadSeccompProfile, ociSeccomp }) =>
      ociSeccomp(await loadSeccompProfile(opts.seccompProfile), { capabilities: DEFAULT_CAPABILITIES, arch: process.arch }),
    ));
  return {
    seccomp: oci,
    seccompBpf: () =>
      (bpf ??= Promise.all([oci(), import("./seccomp-bpf.js")]).then(([s, { compileSeccompBpf, seccompBpfSupported }]) => {
        if (!seccompBpfSupported(process.arch)) {
          throw new EnvironmentError("SECCOMP_UNSUPPORTED", `the bubblewrap executor cannot apply seccomp on ${process.arch}`, {
            hint: "use --executor crun or runc on this machine",
          });
        }
        return compileSeccompBpf(s, process.arch);
      })),
    // One user-mode network per build, shared by its RUN steps (as containers share Docker's bridge): setting one up
    // and tearing it down costs ~40 ms, and a RUN cannot change it (no CAP_NET_ADMIN, /proc/sys read-only) nor leave
    // a process in it. A failed attempt is not kept, so the next RUN tries again.
    network: (signal) => {
      const attempt = (shared ??= import("./run-network.js")
        .then(({ createRunNetwork }) => createRunNetwork({ signal: closing.signal }))
        .catch((e: unknown) => {
          shared = undefined;
          throw e;
        }));
      return raceAbort(attempt, signal).then((net) => ({ nsPath: net.nsPath, resolvConf: net.resolvConf, release: () => Promise.resolve() }));
    },
    // One watchdog shell per build rather than one per RUN: a process spawn less for every RUN.
    watchdog: () => (watchdog ??= startWatchdogService()),
    async close() {
      closing.abort();
      watchdog?.close();
      watchdog = undefined;
      const net = await shared?.catch(() => undefined);
      shared = undefined;
      await net?.release();
    },
  };
}

/** `p`, or an AbortError as soon as `signal` fires (the shared work goes on for other callers). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new AbortError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortError());
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
