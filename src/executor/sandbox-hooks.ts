// The per-build services every executor asks for: Docker's seccomp profile (converted once per build, in the
// runtime spec's form and as BPF for bwrap) and the user-mode network behind RUN's default network.
import { EnvironmentError } from "../errors.js";
import { DEFAULT_CAPABILITIES } from "./sandbox-policy.js";
import { compileSeccompBpf, seccompBpfSupported } from "./seccomp-bpf.js";
import { loadSeccompProfile, ociSeccomp, type OciSeccomp } from "./seccomp-profile.js";
import { createRunNetwork } from "./run-network.js";
import type { SandboxHooks } from "./types.js";

export interface SandboxHooksOptions {
  /** A seccomp profile file instead of Docker's default (tests, or a site policy). */
  seccompProfile?: string;
}

/** Hooks plus close(): the build awaits it before it ends, so every network torn down in the background is gone. */
export interface BuildSandboxHooks extends SandboxHooks {
  close(): Promise<void>;
}

export function sandboxHooks(opts: SandboxHooksOptions = {}): BuildSandboxHooks {
  const releasing = new Set<Promise<void>>();
  let seccomp: Promise<OciSeccomp> | undefined;
  let bpf: Promise<Buffer> | undefined;
  const oci = () =>
    (seccomp ??= loadSeccompProfile(opts.seccompProfile).then((p) => ociSeccomp(p, { capabilities: DEFAULT_CAPABILITIES, arch: process.arch })));
  return {
    seccomp: oci,
    seccompBpf: () =>
      (bpf ??= oci().then((s) => {
        if (!seccompBpfSupported(process.arch)) {
          throw new EnvironmentError("SECCOMP_UNSUPPORTED", `the bubblewrap executor cannot apply seccomp on ${process.arch}`, {
            hint: "use --executor crun or runc on this machine",
          });
        }
        return compileSeccompBpf(s, process.arch);
      })),
    // Tearing a network down takes ~20 ms (the kernel deleting slirp's tap device): a RUN does not wait for it.
    network: async (signal) => {
      const net = await createRunNetwork({ signal });
      return {
        nsPath: net.nsPath,
        resolvConf: net.resolvConf,
        release: () => {
          const p = net.release().finally(() => releasing.delete(p));
          releasing.add(p);
          return Promise.resolve();
        },
      };
    },
    async close() {
      while (releasing.size > 0) await Promise.allSettled([...releasing]);
    },
  };
}
