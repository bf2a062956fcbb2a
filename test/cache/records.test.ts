// Step and image records on disk: a round trip, a miss for an unknown key, keys that are not ours refused before
// they become paths, and a read marking the record used only when its last use is over a minute old.
import { mkdtemp, rm, stat, utimes, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { getImageRecord, getStepRecord, peekStepRecord, putImageRecord, putStepRecord } from "../../src/cache/records.js";
import { storeLayout } from "../../src/store/layout.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tsbuild-records-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("records", () => {
  const key = "ab".repeat(16);
  test("a step record round-trips; an unknown key is a miss", async () => {
    const rec = { v: 1 as const, key, layer: { diffId: `sha256:${"c".repeat(64)}` as const, size: 3 }, created: "2026-12-01T00:00:00Z" };
    await putStepRecord(root, rec);
    expect(await getStepRecord(root, key)).toEqual(rec);
    expect(await getStepRecord(root, "cd".repeat(16))).toBeUndefined();
  });

  test("a damaged record file is a miss, never an error", async () => {
    const k = "ef".repeat(16);
    const p = storeLayout(root).stepRecord(k);
    await mkdir(join(p, ".."), { recursive: true });
    await writeFile(p, "{not json");
    expect(await getStepRecord(root, k)).toBeUndefined();
  });

  test("image records round-trip", async () => {
    const manifest = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${"d".repeat(64)}` as const, size: 9 };
    await putImageRecord(root, key, manifest);
    expect((await getImageRecord(root, key))?.manifest).toEqual(manifest);
  });

  test("a key that is not ours is refused before it becomes a path", async () => {
    await expect(getStepRecord(root, "../../etc/passwd")).rejects.toMatchObject({ code: "INVALID_KEY" });
  });

  test("a read moves the record's mtime (its last use) only when that is over a minute old", async () => {
    const k = "12".repeat(16);
    await putStepRecord(root, { v: 1, key: k, layer: { diffId: `sha256:${"e".repeat(64)}`, size: 1 }, created: "2026-12-01T00:00:00Z" });
    const file = storeLayout(root).stepRecord(k);
    const recent = new Date(Date.now() - 10_000);
    await utimes(file, recent, recent);
    expect(await getStepRecord(root, k)).toBeDefined();
    // A no-op rebuild writes nothing (mtimeMs comes from nanoseconds: compare to the millisecond).
    expect(Math.round((await stat(file)).mtimeMs)).toBe(recent.getTime());
    const old = new Date(Date.now() - 120_000);
    await utimes(file, old, old);
    const before = Date.now();
    expect(await getStepRecord(root, k)).toBeDefined();
    expect((await stat(file)).mtimeMs).toBeGreaterThanOrEqual(before - 1000);
  });

  test("a peek (what a step made last time) reads the record and leaves its last use alone", async () => {
    const k = "34".repeat(16);
    const diffId = `sha256:${"f".repeat(64)}`;
    await putStepRecord(root, { v: 1, key: k, layer: { diffId, size: 1 }, created: "2026-12-01T00:00:00Z" });
    const file = storeLayout(root).stepRecord(k);
    const old = new Date(Date.now() - 3_600_000);
    await utimes(file, old, old);
    expect(peekStepRecord(root, k)?.layer?.diffId).toBe(diffId);
    expect(Math.round((await stat(file)).mtimeMs)).toBe(old.getTime());
    expect(peekStepRecord(root, "56".repeat(16))).toBeUndefined();
  });
});
