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

export function sandboxHooks(opts: SandboxHooksOptions = {}): SandboxHooks {
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
    network: (signal) => createRunNetwork({ signal }),
  };
}
