// Shared fixtures for sandbox tests: executors with test-owned state roots, and checks that nothing (mounts, containers) outlives a test.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { bwrapExecutor } from "../../src/executor/bwrap.js";
import { ociRuntimeExecutor } from "../../src/executor/oci-runtime.js";
import { sandboxHooks } from "../../src/executor/sandbox-hooks.js";
import type { Executor, ProcessIO } from "../../src/executor/types.js";
import { requireTool } from "./tools.js";

const run = promisify(execFile);

export type ExecutorName = "crun" | "runc" | "bwrap";

export async function makeExecutor(name: ExecutorName, stateRoot: string): Promise<Executor> {
  await requireTool(name);
  // The hooks every build gives its executor (Docker's seccomp profile, the user-mode default network), closed after
  // each run here so no test leaves a network behind.
  const hooks = sandboxHooks();
  const ex = name === "bwrap" ? bwrapExecutor({ hooks }) : ociRuntimeExecutor(name, { stateDir: `${stateRoot}/${name}`, hooks });
  return { name: ex.name, run: (...args) => ex.run(...args).finally(() => hooks.close()) };
}

/** Container ids the runtime still knows under the test's state root. */
export async function listContainers(name: ExecutorName, stateRoot: string): Promise<string[]> {
  if (name === "bwrap") return [];
  const { stdout } = await run(name, ["--root", `${stateRoot}/${name}`, "list", "-q"]).catch(() => ({ stdout: "" }));
  return stdout.split("\n").filter((l) => l.trim() !== "");
}

export function captureIO(): ProcessIO & { out(): string; err(): string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  return {
    stdout: (c) => out.push(Buffer.from(c)),
    stderr: (c) => err.push(Buffer.from(c)),
    out: () => Buffer.concat(out).toString("utf8"),
    err: () => Buffer.concat(err).toString("utf8"),
  };
}

export const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
