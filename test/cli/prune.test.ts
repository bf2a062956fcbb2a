// `tsbuild prune` and `tsbuild du` end to end: a real store built by the CLI; tagged images survive every prune
// mode and still inspect and export (checked with skopeo).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { tsbuild, tempDir, REPO } from "../helpers/cli.js";
import { exec } from "../helpers/tools.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { acquireBuildLock } from "../../src/store/locks.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

async function du(): Promise<{ images: { count: number; size: number }; unreferenced: { count: number; size: number }; total: number }> {
  const res = await r(["du", "--format", "json"]);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout);
}

async function checkHello(): Promise<void> {
  const info = await r(["inspect", "hello:1.0"]);
  expect(info.code, info.stderr).toBe(0);
  expect(JSON.parse(info.stdout)[0].Config.config.Cmd).toEqual(["/usr/local/bin/hello"]);
  const file = join(dir.path, `hello-${Date.now()}.tar`);
  const saved = await r(["save", "-o", file, "hello:1.0"]);
  expect(saved.code, saved.stderr).toBe(0);
  const { stdout } = await exec("skopeo", ["inspect", `docker-archive:${file}`]);
  expect(JSON.parse(stdout).Layers).toHaveLength(3);
}

beforeAll(async () => {
  dir = await tempDir();
  root = join(dir.path, "store");
  const loaded = await r(["load", "-i", await makeBusyboxArchive(dir.path)]);
  expect(loaded.code, loaded.stderr).toBe(0);
  const built = await r(["build", "-q", "-t", "hello:1.0", join(REPO, "fixtures/hello")]);
  expect(built.code, built.stderr).toBe(0);
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("tsbuild du and prune on a built store", () => {
  it("du prints the table and --verbose lists cache records", async () => {
    const res = await r(["du", "--verbose"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/m);
    expect(res.stdout).toMatch(/^Images\s+2\s+2\s+[\d.]+[kM]?B\s+0B \(0%\)$/m);
    expect(res.stdout).toMatch(/^Build cache\s+\d+\s+-\s/m);
    expect(res.stdout).toMatch(/^Total\s+[\d.]+[kM]?B/m);
    expect(res.stdout).toMatch(/^Build cache records:$/m);
  });

  it("removes the blobs of an untagged image, keeps the tagged one working", async () => {
    const before = await du();
    expect(before.images.count).toBe(2);
    expect((await r(["rmi", "busybox:local"])).code).toBe(0);
    const mid = await du();
    expect(mid.unreferenced.count).toBeGreaterThan(0);

    const res = await r(["prune"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^Deleted blobs: \d+ \([\d.]+[kM]?B\)$/m);
    const total = /^Total reclaimed space: (.+)$/m.exec(res.stdout)?.[1];
    expect(total).toBeDefined();
    const after = await du();
    expect(after.unreferenced.count).toBe(0);
    expect(after.images.count).toBe(1);
    expect(after.total).toBeLessThan(mid.total);
    // The busybox layer (about 1 MB) was the bulk of what went.
    expect(mid.total - after.total).toBeGreaterThan(500_000);
    await checkHello();
  });

  it("--all and --keep-storage 0 keep the tagged image; a rebuild afterwards works", async () => {
    for (const args of [
      ["prune", "--all"],
      ["prune", "--keep-storage", "0B"],
      ["prune", "--filter", "until=1s"],
    ]) {
      const res = await r(args);
      expect(res.code, `${args.join(" ")}: ${res.stderr}`).toBe(0);
      expect(res.stdout).toMatch(/^Total reclaimed space: /m);
      await checkHello();
    }
    const rebuilt = await r(["build", "-q", "-t", "hello:1.0", join(REPO, "fixtures/hello")]);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    await checkHello();
  });

  it("refuses while a build holds the store", async () => {
    const lock = await acquireBuildLock(root);
    try {
      const res = await r(["prune"]);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain("[STORE_BUSY]");
      expect(res.stderr).toContain(`pid ${process.pid}`);
      expect(res.stderr).toContain("hint: run prune again when the build(s) finish");
    } finally {
      await lock.release();
    }
  });

  it("bad sizes, durations and filter keys are usage errors naming the flag and the accepted forms", async () => {
    const size = await r(["prune", "--keep-storage", "lots"]);
    expect(size.code).toBe(2);
    expect(size.stderr).toContain('--keep-storage "lots" is not a size');
    expect(size.stderr).toContain("512MiB");
    const dur = await r(["prune", "--filter", "until=yesterday"]);
    expect(dur.code).toBe(2);
    expect(dur.stderr).toContain("--filter until=yesterday is not a duration");
    expect(dur.stderr).toContain("24h");
    const key = await r(["prune", "--filter", "label=x"]);
    expect(key.code).toBe(2);
    expect(key.stderr).toContain("the only filter is until=DURATION");
    const fmt = await r(["du", "--format", "yaml"]);
    expect(fmt.code).toBe(2);
  });

  it("--dry-run removes nothing", async () => {
    await r(["tag", "hello:1.0", "hello:2"]);
    await r(["rmi", "hello:1.0"]);
    await r(["rmi", "hello:2"]);
    const before = await du();
    const res = await r(["prune", "--dry-run"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^Would delete blobs: /m);
    expect(res.stdout).toMatch(/^Total reclaimable space: /m);
    expect((await du()).total).toBe(before.total);
  });
});
