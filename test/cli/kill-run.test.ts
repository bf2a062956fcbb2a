// A build killed with SIGKILL while a RUN is running leaves no process of that RUN behind, under every executor:
// crun/runc containers are killed by their watchdog, bwrap's by --die-with-parent, and the cgroup goes with them.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, REPO, tempDir, tsbuild } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { mountsUnder } from "../../src/util/mountinfo.js";
import { processesWith as processesOf, waitFor } from "../helpers/hostile.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;

async function processesWith(marker: string): Promise<number[]> {
  return (await processesOf(marker)).map((p) => p.pid);
}

beforeAll(async () => {
  dir = await tempDir("tsbuild-killrun-");
  root = join(dir.path, "store");
  const loaded = await tsbuild(["load", "-i", await makeBusyboxArchive(dir.path), "--root", root]);
  expect(loaded.code, loaded.stderr).toBe(0);
});
afterAll(async () => {
  await dir?.cleanup();
});

describe.each(["crun", "runc", "bwrap"])("kill -9 of a build during RUN (%s)", (executor) => {
  it("leaves no process of the RUN running", async () => {
    const marker = `1000.${randomBytes(3).readUIntBE(0, 3)}`;
    const ctx = join(dir.path, `ctx-${executor}`);
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, "Dockerfile"), `FROM busybox:local\nRUN --network=none sleep ${marker}\n`);
    const child = spawn(process.execPath, [BIN, "build", "--progress=plain", "--executor", executor, "--root", root, ctx], { cwd: REPO, stdio: "ignore" });
    const leftovers: number[] = [];
    try {
      expect(await waitFor(async () => (await processesWith(`sleep ${marker}`)).length > 0, 30_000)).toBe(true);
      child.kill("SIGKILL");
      expect(await waitFor(async () => (await processesWith(`sleep ${marker}`)).length === 0, 5_000)).toBe(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      leftovers.push(...(await processesWith(`sleep ${marker}`)));
      for (const pid of leftovers) process.kill(pid, "SIGKILL");
    }
    expect(leftovers).toEqual([]);
    // The next build cleans what the killed one left in the store and builds normally.
    await writeFile(join(ctx, "Dockerfile"), "FROM busybox:local\nRUN --network=none true\n");
    const again = await tsbuild(["build", "--progress=plain", "--executor", executor, "--root", root, ctx]);
    expect(again.code, again.stderr).toBe(0);
    // The killed build's overlay mounts (its stage dir and the RUN's view) were unmounted by that next build.
    expect(await mountsUnder(root)).toEqual([]);
  });
});
