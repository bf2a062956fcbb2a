// crun's hybrid-cgroup workaround: crun runs in a private mount namespace with a tmpfs of its own over
// /sys/fs/cgroup/unified, so the run cgroup entries crun writes there go with that namespace instead of piling up on
// the host's /sys/fs/cgroup tmpfs beneath the cgroup2 mount.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { crunNeedsHybridWorkaround } from "../../src/executor/runtime-cli.js";
import { makeBusyboxRootfs } from "../helpers/busybox-rootfs.js";
import { captureIO, makeExecutor, PATH_ENV } from "../helpers/sandbox.js";

const run = promisify(execFile);

/** Entries of the host's /sys/fs/cgroup tmpfs below the unified mount point that name this process's RUNs. */
async function hiddenRunEntries(): Promise<string[]> {
  const { stdout } = await run("unshare", [
    "--mount",
    "--propagation",
    "private",
    "sh",
    "-c",
    "umount -l /sys/fs/cgroup/unified && find /sys/fs/cgroup/unified",
  ]);
  return stdout.split("\n").filter((p) => p.includes(`/run-${process.pid}-`));
}

/** Run cgroup dirs of this process's RUNs still visible anywhere under /sys/fs/cgroup. */
async function visibleRunEntries(): Promise<string[]> {
  const { stdout } = await run("find", ["/sys/fs/cgroup", "-maxdepth", "6", "-name", `run-${process.pid}-*`]).catch((e: { stdout?: string }) => ({
    stdout: e.stdout ?? "",
  }));
  return stdout.split("\n").filter((p) => p !== "");
}

describe("crun run cgroups", () => {
  it("leave nothing behind: no run cgroup afterwards, and with the hybrid workaround nothing beneath the host's cgroup2 mount", async () => {
    if (process.getuid?.() !== 0) throw new Error("this test runs crun with cgroups: run it as root");
    const hybrid = await crunNeedsHybridWorkaround();
    const base = await mkdtemp(join(tmpdir(), "tsbuild-hybrid-"));
    try {
      const rootfs = await makeBusyboxRootfs(join(base, "rootfs"));
      const before = hybrid ? await hiddenRunEntries() : [];
      const ex = await makeExecutor("crun", join(base, "state"));
      const io = captureIO();
      const { exitCode } = await ex.run(
        { args: ["/bin/true"], env: [PATH_ENV], cwd: "/", uid: 0, gid: 0, network: "none" },
        rootfs,
        io,
        new AbortController().signal,
      );
      expect({ exitCode, err: io.err() }).toEqual({ exitCode: 0, err: "" });
      expect(await visibleRunEntries()).toEqual([]);
      if (hybrid) expect(await hiddenRunEntries()).toEqual(before);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
