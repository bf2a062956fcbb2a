// Ctrl-C / SIGTERM during a RUN: the container is killed, mounts and scratch dirs are removed, exit status 130.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, execFileSync } from "node:child_process";
import { readFile, writeFile, mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { BIN, tempDir, tsbuild } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;

beforeAll(async () => {
  dir = await tempDir();
  root = join(dir.path, "store");
  const loaded = await tsbuild(["load", "-i", await makeBusyboxArchive(dir.path), "--root", root]);
  expect(loaded.code, loaded.stderr).toBe(0);
});
afterAll(async () => {
  await dir?.cleanup();
});

function runtimeContainers(): string[] {
  const out: string[] = [];
  for (const [bin, state] of [
    ["crun", "/run/tsbuild/crun"],
    ["runc", "/run/tsbuild/runc"],
  ] as const) {
    try {
      const text = execFileSync(bin, ["--root", state, "list", "-q"], { encoding: "utf8" });
      out.push(...text.split("\n").filter(Boolean));
    } catch {
      /* no state dir yet: no containers */
    }
  }
  return out;
}

describe("signals", () => {
  for (const [signal, executor] of [
    ["SIGINT", "crun"],
    ["SIGTERM", "runc"],
  ] as const) {
    it(`${signal} during RUN (${executor}) exits 130 and leaves nothing behind`, async () => {
      const p = join(dir.path, `proj-${signal}`);
      await mkdir(p, { recursive: true });
      await writeFile(join(p, "Dockerfile"), "FROM busybox:local\nRUN echo started && sleep 100\n");
      const child = spawn(process.execPath, [BIN, "build", "--progress", "plain", "--executor", executor, "--root", root, p], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      const started = new Promise<void>((resolve) => {
        child.stderr.on("data", (c: Buffer) => {
          stderr += c.toString();
          if (stderr.includes("started")) resolve();
        });
      });
      await started;
      const t0 = Date.now();
      child.kill(signal);
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
      expect(code, stderr).toBe(130);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(stderr).toMatch(/cancelled/);
      const mounts = (await readFile("/proc/mounts", "utf8")).split("\n").filter((l) => l.includes(dir.path));
      expect(mounts).toEqual([]);
      expect(runtimeContainers()).toEqual([]);
      expect((await readdir(join(root, "tmp")).catch(() => [])).filter((n) => n.startsWith("build-"))).toEqual([]);
    });
  }
});
