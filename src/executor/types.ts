// The executor contract: run one process in a sandbox whose root is a plain directory.
// Implementations: OCI runtimes (crun/runc) and bubblewrap; see select-executor.ts.
import type { WatchdogService } from "./watchdog.js";

export interface BindMount {
  /** Host path (ignored for tmpfs). */
  source: string;
  /** Absolute path inside the sandbox. */
  destination: string;
  readonly: boolean;
  type?: "bind" | "tmpfs";
}

export interface ProcessSpec {
  args: string[];
  /** "KEY=value" strings; nothing is inherited from the host. */
  env: string[];
  /** Absolute working directory inside the sandbox. */
  cwd: string;
  uid: number;
  gid: number;
  additionalGids?: number[];
  hostname?: string;
  /**
   * "default": a private network namespace with outbound access through a user-mode network (never the host's
   * loopback); "none": a private namespace with only lo; "host": the host's network (the network.host entitlement).
   */
  network: "default" | "none" | "host";
  extraMounts?: BindMount[];
  /**
   * "insecure" (RUN --security=insecure, granted by the security.insecure entitlement): every capability, no
   * seccomp, no masked or read-only paths, writable /sys and the host's devices, as docker run --privileged.
   */
  security?: "sandbox" | "insecure";
  /** Extra /etc/hosts entries (buildx's --add-host). */
  extraHosts?: { host: string; ip: string }[];
}

export interface ProcessIO {
  stdout(chunk: Uint8Array): void;
  stderr(chunk: Uint8Array): void;
  /** Copied to the process's standard input, which is closed when the stream ends; absent: stdin is /dev/null. */
  stdin?: NodeJS.ReadableStream;
  /**
   * The process gets tsbuild's own fds 0, 1 and 2 (`tsbuild run -t`: the terminal itself, since no pty is made);
   * stdout(), stderr() and stdin are then unused.
   */
  inheritStdio?: boolean;
  /**
   * Marks the end of one phase of the RUN (bench/run-phases.mjs times them); absent in builds. The executor marks
   * "setup" just before it starts the runtime, "runtime" when that exits and "teardown" when it has cleaned up.
   */
  phase?(name: RunPhase): void;
}

/** The phases of one RUN step, in order: snapshot prepare, sandbox setup, runtime, teardown, diff, commit, release. */
export type RunPhase = "snapshot" | "setup" | "runtime" | "teardown" | "diff" | "commit" | "release";

export interface Executor {
  readonly name: string;
  /** Resolves with the process's exit status (128+n when killed by signal n); rejects with AbortError when `signal` fires. */
  run(spec: ProcessSpec, rootfs: string, io: ProcessIO, signal: AbortSignal): Promise<{ exitCode: number }>;
}

/** A network namespace prepared for one RUN's default network (see user-net.ts). */
export interface RunNetworkHandle {
  /** A namespace file to join. */
  nsPath: string;
  /** The RUN's /etc/resolv.conf content. */
  resolvConf: string;
  release(): Promise<void>;
}

/** What an executor asks of the engine for each RUN: the default network and the seccomp profile. */
export interface SandboxHooks {
  network?(signal: AbortSignal): Promise<RunNetworkHandle>;
  /** linux.seccomp in the OCI runtime spec's form (converted for the host's arch and the RUN's capabilities). */
  seccomp?(): Promise<unknown>;
  /** The same profile compiled to a classic BPF program for bwrap's --seccomp (and crun's annotation). */
  seccompBpf?(): Promise<Buffer>;
  /** The build's watchdog shell (absent: each RUN starts a watchdog of its own). */
  watchdog?(): WatchdogService;
}
