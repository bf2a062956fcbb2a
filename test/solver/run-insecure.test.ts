// RUN --security=insecure through the real CLI, under crun and bwrap: with --allow security.insecure the step has
// every capability tsbuild holds (CapEff = our CapBnd), no seccomp, and may mount; without the entitlement the
// build fails naming the line and the flag; a sandboxed RUN of the same command keeps Docker's defaults.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { requireTool } from "../helpers/tools.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let n = 0;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

async function project(dockerfile: string): Promise<string> {
  const ctx = join(dir.path, `ctx-${n++}`);
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, "Dockerfile"), dockerfile);
  return ctx;
}

/** The capability sets tsbuild itself holds: an insecure RUN gets exactly our bounding set. */
async function ourBounding(): Promise<string> {
  return /^CapBnd:\s*([0-9a-f]+)/m.exec(await readFile("/proc/self/status", "utf8"))?.[1] as string;
}

const SHOW =
  'RUN echo CA""P=$(grep CapEff /proc/self/status | cut -f2) SECC""OMP=$(grep ^Seccomp: /proc/self/status | cut -f2) && mkdir -p /mnt && mount -t tmpfs none /mnt && echo MOU""NTED && echo 1 > /sys/kernel/mm/ksm/run 2>/dev/null; echo done\n';

beforeAll(async () => {
  for (const t of ["crun", "bwrap"]) await requireTool(t);
  dir = await tempDir("tsbuild-insecure-");
  root = join(dir.path, "store");
  const loaded = await r(["load", "-i", await makeBusyboxArchive(dir.path)]);
  expect(loaded.code, loaded.stderr).toBe(0);
});
afterAll(async () => {
  await dir?.cleanup();
});

describe.each(["crun", "bwrap"])("RUN --security=insecure under --executor %s", (executor) => {
  it("with --allow security.insecure: every capability, no seccomp, mount works", async () => {
    const ctx = await project(`FROM busybox:local\n${SHOW.replace("RUN ", "RUN --security=insecure ")}`);
    const res = await r(["build", "--progress=plain", "--no-cache", "--executor", executor, "--allow", "security.insecure", ctx]);
    expect(res.code, res.stderr).toBe(0);
    expect(/CAP=([0-9a-f]+)/.exec(res.stderr)?.[1]).toBe(await ourBounding());
    expect(/SECCOMP=(\d)/.exec(res.stderr)?.[1]).toBe("0");
    expect(res.stderr).toContain("MOUNTED");
  });

  it("a sandboxed RUN keeps Docker's default capabilities and seccomp, and cannot mount", async () => {
    const ctx = await project(
      `FROM busybox:local\nRUN echo CA""P=$(grep CapEff /proc/self/status | cut -f2) && (mkdir -p /mnt && mount -t tmpfs none /mnt && echo MOU""NTED || true)\n`,
    );
    const res = await r(["build", "--progress=plain", "--no-cache", "--executor", executor, "--allow", "security.insecure", ctx]);
    expect(res.code, res.stderr).toBe(0);
    expect(/CAP=([0-9a-f]+)/.exec(res.stderr)?.[1]).not.toBe(await ourBounding());
    expect(res.stderr).not.toContain("MOUNTED");
  });
});

describe("the security.insecure entitlement", () => {
  it("is required: the error names the line and the flag to pass", async () => {
    const ctx = await project("FROM busybox:local\nENV A=1\nRUN --security=insecure true\n");
    const res = await r(["build", "--progress=plain", "--executor", "crun", ctx]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/Dockerfile:3:1: RUN --security=insecure needs the security.insecure entitlement/);
    expect(res.stderr).toContain("--allow security.insecure");
  });

  it("an insecure RUN does not share the cache record of the same sandboxed RUN", async () => {
    const sandboxed = await project("FROM busybox:local\nRUN echo same-command\n");
    expect((await r(["build", "--progress=plain", "--executor", "crun", sandboxed])).code).toBe(0);
    const insecure = await project("FROM busybox:local\nRUN --security=insecure echo same-command\n");
    const res = await r(["build", "--progress=plain", "--executor", "crun", "--allow", "security.insecure", insecure]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).not.toMatch(/CACHED/);
  });

  it("--allow with an unknown entitlement is a usage error listing both", async () => {
    const ctx = await project("FROM busybox:local\nRUN true\n");
    const res = await r(["build", "--allow", "device", ctx]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("network.host and security.insecure");
  });
});
