import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tempPath, writeFileAtomic } from "../../src/store/atomic-write.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsbuild-aw-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("writeFileAtomic", () => {
  it("creates parents, replaces content and leaves no temp files", async () => {
    const p = join(dir, "a", "b", "f.json");
    await writeFileAtomic(p, "one");
    await Promise.all(Array.from({ length: 10 }, (_, i) => writeFileAtomic(p, `v${i}`.repeat(1000))));
    expect(await readFile(p, "utf8")).toMatch(/^(v\d)\1{999}$/);
    expect(await readdir(join(dir, "a", "b"))).toEqual(["f.json"]);
  });
  it("tempPath gives unique names", () => {
    const names = new Set(Array.from({ length: 100 }, () => tempPath(dir)));
    expect(names.size).toBe(100);
  });
});
