// The executor contract: run one process in a sandbox whose root is a plain directory.
// Implementations: OCI runtimes (crun/runc) and bubblewrap; see select-executor.ts.

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
  /** "default" shares the host network (package managers work), "none" gets a private netns with only lo. */
  network: "default" | "none" | "host";
  extraMounts?: BindMount[];
}

export interface ProcessIO {
  stdout(chunk: Uint8Array): void;
  stderr(chunk: Uint8Array): void;
}

export interface Executor {
  readonly name: string;
  /** Resolves with the process's exit status (128+n when killed by signal n); rejects with AbortError when `signal` fires. */
  run(spec: ProcessSpec, rootfs: string, io: ProcessIO, signal: AbortSignal): Promise<{ exitCode: number }>;
}
