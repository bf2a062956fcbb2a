// Prune and disk usage on real stores: blobs through the content store, tags through the image store, cache records
// written in the step cache's documented on-disk format, ages set through file mtimes.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, mkdir, readdir, utimes, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MediaType, type Descriptor, type Digest } from "../../src/image/types.js";
import { openContentStore } from "../../src/store/content-store.js";
import { openImageStore } from "../../src/store/image-store.js";
import { diskUsage } from "../../src/store/disk-usage.js";
import { executePrune, planPrune, prune } from "../../src/store/gc.js";
import { acquireBuildLock } from "../../src/store/locks.js";
import type { ContentStore } from "../../src/store/types.js";
import { tempDir } from "../helpers/cli.js";
import { blobBytes, deleteBlob } from "../helpers/store.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let content: ContentStore;

beforeEach(async () => {
  dir = await tempDir("tsbuild-gc-");
  root = join(dir.path, "store");
  content = openContentStore(root);
});
afterEach(async () => {
  await dir.cleanup();
});

const DAY = 86_400_000;
const hex = (d: Digest) => d.slice("sha256:".length);
const blobPath = (d: Digest) => join(root, "blobs", "sha256", hex(d));
const newKey = () => randomBytes(32).toString("hex");

async function layer(size: number): Promise<{ diffId: Digest; size: number }> {
  const r = await content.putBytes(randomBytes(size));
  return { diffId: r.digest, size: r.size };
}

/** A real image (config + manifest blobs over the given layers); returns the manifest descriptor and all its blobs. */
async function image(layers: { diffId: Digest; size: number }[]): Promise<{ manifest: Descriptor; blobs: Digest[] }> {
  const config = await content.putBytes(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) }, history: [] }),
  );
  const m = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: MediaType.OciLayer, digest: l.diffId, size: l.size })),
  };
  const man = await content.putBytes(JSON.stringify(m));
  return {
    manifest: { mediaType: MediaType.OciManifest, digest: man.digest, size: man.size },
    blobs: [man.digest, config.digest, ...layers.map((l) => l.diffId)],
  };
}

async function age(path: string, ms: number): Promise<void> {
  const t = new Date(Date.now() - ms);
  await utimes(path, t, t);
}

async function stepRecord(l: { diffId: Digest; size: number } | null, ageMs = 0): Promise<string> {
  const key = newKey();
  const path = join(root, "cache", "steps", key.slice(0, 2), `${key}.json`);
  await mkdir(join(root, "cache", "steps", key.slice(0, 2)), { recursive: true });
  await writeFile(path, JSON.stringify({ v: 1, key, layer: l, created: new Date().toISOString() }));
  await age(path, ageMs);
  return path;
}

async function imageRecord(manifest: Descriptor, ageMs = 0): Promise<string> {
  const path = join(root, "cache", "images", `${newKey()}.json`);
  await mkdir(join(root, "cache", "images"), { recursive: true });
  await writeFile(path, JSON.stringify({ v: 1, manifest }));
  await age(path, ageMs);
  return path;
}

/** The gzip form of a stored layer, cached the way layer/store-layer.ts does it. */
async function gzipEntry(diffId: Digest): Promise<{ path: string; blob: Digest }> {
  const gz = await content.putBytes(gzipSync(await blobBytes(content, diffId)));
  const path = join(root, "compressed", "gzip", `${hex(diffId)}.json`);
  await mkdir(join(root, "compressed", "gzip"), { recursive: true });
  await writeFile(path, JSON.stringify({ digest: gz.digest, size: gz.size }) + "\n");
  return { path, blob: gz.digest };
}

/** Every regular file under the store except locks/, with its size. */
async function walk(d = root, out = new Map<string, number>()): Promise<Map<string, number>> {
  for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
    const p = join(d, e.name);
    if (relative(root, p) === "locks") continue;
    if (e.isDirectory()) await walk(p, out);
    else if (e.isFile()) out.set(relative(root, p), (await lstat(p)).size);
  }
  return out;
}
const storeBytes = async () => [...(await walk()).values()].reduce((a, b) => a + b, 0);

async function allPresent(blobs: Digest[]): Promise<boolean> {
  for (const b of blobs) if (!(await content.has(b))) return false;
  return true;
}

describe("default prune: dangling data only", () => {
  it("removes dangling blobs, broken records, stale compressed entries and tmp/, keeps tagged images and live records", async () => {
    const base = await layer(3000);
    const tagged = await image([base, await layer(2000)]);
    await openImageStore(root).set("docker.io/library/app:1", tagged.manifest);
    const taggedGz = await gzipEntry(base.diffId);

    const cached = await layer(1500);
    const rec = await stepRecord(cached, 10 * DAY);
    const sharedRec = await stepRecord(base); // its layer is also the tagged image's
    const metaRec = await stepRecord(null);
    const cachedImg = await image([cached]);
    const imgRec = await imageRecord(cachedImg.manifest);

    const dangling = await layer(4000);
    const danglingGz = await gzipEntry(dangling.diffId); // compressed entry of a dangling layer goes with it
    const orphanGz = await gzipEntry((await layer(10)).diffId);
    await deleteBlob(content, orphanGz.blob); // entry whose gzip blob is gone
    const lost = await layer(100);
    const brokenStep = await stepRecord(lost);
    await deleteBlob(content, lost.diffId); // its layer is missing
    const brokenImg = await image([await layer(50)]);
    await deleteBlob(content, brokenImg.blobs[1] as Digest); // its config is missing
    const brokenImgRec = await imageRecord(brokenImg.manifest);
    const garbledRec = await stepRecord(null);
    await writeFile(garbledRec, "{ not json");

    await mkdir(join(root, "tmp", "build-abc", "stage-0"), { recursive: true });
    await writeFile(join(root, "tmp", "build-abc", ".owner"), "999999999\n");
    await writeFile(join(root, "tmp", ".x.json.tmp-999999999-0123456789abcdef"), "half");
    await mkdir(join(root, "tmp", "load-live"));
    await writeFile(join(root, "tmp", "load-live", ".owner"), `${process.pid}\n`); // a live non-build writer

    const res = await prune(root);
    const removed = new Set(res.removed.map((i) => i.path));
    // Tagged image intact, including the cached gzip form of its layer.
    expect(await allPresent([...tagged.blobs, taggedGz.blob])).toBe(true);
    expect(existsSync(taggedGz.path)).toBe(true);
    // Live records and everything they hold stay.
    for (const p of [rec, sharedRec, metaRec, imgRec]) expect(existsSync(p)).toBe(true);
    expect(await allPresent([cached.diffId, ...cachedImg.blobs])).toBe(true);
    // Dangling data goes.
    expect(await content.has(dangling.diffId)).toBe(false);
    expect(await content.has(danglingGz.blob)).toBe(false);
    for (const p of [danglingGz.path, orphanGz.path, brokenStep, brokenImgRec, garbledRec]) {
      expect(existsSync(p), p).toBe(false);
      expect(removed.has(p), p).toBe(true);
    }
    // The broken image record's surviving blobs (manifest, layer) were held by nothing else.
    expect(await content.has(brokenImg.blobs[0] as Digest)).toBe(false);
    expect((await readdir(join(root, "tmp"))).sort()).toEqual(["load-live"]);
    expect(res.removed.filter((i) => i.category === "broken-records")).toHaveLength(3);
    expect(res.removed.filter((i) => i.category === "step-records" || i.category === "image-records")).toEqual([]);
    expect(res.reclaimed).toBe(res.removed.reduce((n, i) => n + i.size, 0));
    // Nothing left to do.
    expect((await planPrune(root)).items).toEqual([]);
  });

  it("refuses with STORE_BUSY while a build holds the store and removes nothing", async () => {
    const dangling = await layer(100);
    const lock = await acquireBuildLock(root);
    try {
      await expect(prune(root)).rejects.toMatchObject({ code: "STORE_BUSY", message: expect.stringContaining(String(process.pid)) });
      expect(await content.has(dangling.diffId)).toBe(true);
    } finally {
      await lock.release();
    }
    await prune(root);
    expect(await content.has(dangling.diffId)).toBe(false);
  });
});

describe("prune modes", () => {
  it("--all removes every cache record and cache, the blobs only they held, and keeps tagged images", async () => {
    const shared = await layer(1000);
    const tagged = await image([shared]);
    await openImageStore(root).set("docker.io/library/app:1", tagged.manifest);
    const own = await layer(2000);
    const recs = [await stepRecord(shared), await stepRecord(own), await imageRecord((await image([own])).manifest)];
    await mkdir(join(root, "cache", "explain"), { recursive: true });
    await writeFile(join(root, "cache", "explain", `${newKey()}.json`), "{}");
    await mkdir(join(root, "cache", "context"), { recursive: true });
    await writeFile(join(root, "cache", "context", `${newKey()}.json`), "{}");
    await mkdir(join(root, "cache-mounts", "abc", "sub"), { recursive: true });
    await writeFile(join(root, "cache-mounts", "abc", "sub", "f"), "12345");

    const res = await prune(root, { all: true });
    for (const p of recs) expect(existsSync(p)).toBe(false);
    expect(await content.has(own.diffId)).toBe(false);
    expect(await allPresent(tagged.blobs)).toBe(true);
    expect(await readdir(join(root, "cache", "explain"))).toEqual([]);
    expect(await readdir(join(root, "cache", "context"))).toEqual([]);
    expect(await readdir(join(root, "cache-mounts"))).toEqual([]);
    expect(res.removed.find((i) => i.category === "cache-mounts")?.size).toBe(5);
    // What is left is exactly the tagged image and its ref.
    expect([...(await walk()).keys()].filter((p) => p.startsWith("blobs/")).sort()).toEqual(tagged.blobs.map((b) => `blobs/sha256/${hex(b)}`).sort());
  });

  it("until= removes only records unused for that long, with their blobs", async () => {
    const oldL = await layer(1000);
    const newL = await layer(1000);
    const oldRec = await stepRecord(oldL, 2 * DAY);
    const newRec = await stepRecord(newL, 3600_000);
    const oldImg = await image([oldL]);
    const oldImgRec = await imageRecord(oldImg.manifest, 3 * DAY);
    await prune(root, { until: DAY });
    expect(existsSync(oldRec)).toBe(false);
    expect(existsSync(oldImgRec)).toBe(false);
    expect(existsSync(newRec)).toBe(true);
    expect(await content.has(oldL.diffId)).toBe(false);
    expect(await allPresent(oldImg.blobs)).toBe(false);
    expect(await content.has(newL.diffId)).toBe(true);
  });

  it("--keep-storage removes least recently used records first, just enough to fit", async () => {
    const tagged = await image([await layer(5000)]);
    await openImageStore(root).set("docker.io/library/app:1", tagged.manifest);
    const ls = [await layer(10_000), await layer(10_000), await layer(10_000)];
    const recs = [
      await stepRecord(ls[0] as { diffId: Digest; size: number }, 3 * DAY),
      await stepRecord(ls[1] as { diffId: Digest; size: number }, 2 * DAY),
      await stepRecord(ls[2] as { diffId: Digest; size: number }, DAY),
    ];
    const total = await storeBytes();
    expect((await diskUsage(root)).total).toBe(total);

    // 5,000 bytes over: the oldest record alone frees enough.
    const plan1 = await planPrune(root, { keepStorage: total - 5000 });
    expect(plan1.items.filter((i) => i.category === "step-records").map((i) => i.path)).toEqual([recs[0]]);
    // 15,000 over: the two oldest; the newest stays.
    const keep = total - 15_000;
    const res = await prune(root, { keepStorage: keep });
    expect(
      res.plan.items
        .filter((i) => i.category === "step-records")
        .map((i) => i.path)
        .sort(),
    ).toEqual([recs[0], recs[1]].sort());
    expect(existsSync(recs[2] as string)).toBe(true);
    expect(await content.has((ls[2] as { diffId: Digest }).diffId)).toBe(true);
    const after = await storeBytes();
    expect(after).toBeLessThanOrEqual(keep);
    expect(after).toBe(res.plan.sizeAfter);
    // A limit below the tagged image's own size drops the whole cache but never the image.
    await prune(root, { keepStorage: 1 });
    expect(existsSync(recs[2] as string)).toBe(false);
    expect(await allPresent(tagged.blobs)).toBe(true);
  });

  it("a prune cut short at any point leaves a consistent store, and the next prune finishes the job", async () => {
    // Build the same store shape for every cut point: records go before blobs, so a surviving record always
    // still has its blobs (kill -9 at any moment is harmless).
    const shape = async () => {
      const tagged = await image([await layer(300)]);
      await openImageStore(root).set("docker.io/library/app:1", tagged.manifest);
      const a = await layer(200);
      await stepRecord(a, 5 * DAY);
      await imageRecord((await image([a, await layer(100)])).manifest, 5 * DAY);
      await stepRecord(await layer(100));
      await gzipEntry(a.diffId);
      await layer(400);
      return tagged;
    };
    const n = (await (async () => {
      await shape();
      return (await planPrune(root, { until: DAY })).items.length;
    })()) as number;
    expect(n).toBeGreaterThan(6);
    for (let cut = 0; cut <= n; cut++) {
      await dir.cleanup();
      await mkdir(dir.path, { recursive: true });
      const tagged = await shape();
      const plan = await planPrune(root, { until: DAY });
      await executePrune(root, { ...plan, items: plan.items.slice(0, cut) });
      // Every record still on disk has all its blobs.
      const du = await diskUsage(root);
      expect(
        du.records.filter((r) => r.broken),
        `cut ${cut}`,
      ).toEqual([]);
      expect(await allPresent(tagged.blobs)).toBe(true);
      await prune(root, { until: DAY });
      expect((await planPrune(root, { until: DAY })).items, `cut ${cut}`).toEqual([]);
      expect(du.total).toBeGreaterThan(0);
    }
  });

  it("refuses a plan that names paths outside the store", async () => {
    const plan = await planPrune(root);
    await expect(executePrune(root, { ...plan, items: [{ category: "blobs", path: join(dir.path, "elsewhere"), size: 1 }] })).rejects.toMatchObject({
      code: "PRUNE_PLAN_INVALID",
    });
  });
});

describe("disk usage", () => {
  it("categories add up to the bytes on disk and match the files they describe", async () => {
    const shared = await layer(1111);
    const tagged = await image([shared, await layer(2222)]);
    await openImageStore(root).set("docker.io/library/app:1", tagged.manifest);
    await openImageStore(root).set("docker.io/library/app:2", tagged.manifest);
    const gz = await gzipEntry(shared.diffId);
    const cacheOnly = await layer(3333);
    const r1 = await stepRecord(cacheOnly);
    const r2 = await stepRecord(shared);
    const dangling = await layer(4444);
    await mkdir(join(root, "cache-mounts", "m1"), { recursive: true });
    await writeFile(join(root, "cache-mounts", "m1", "f"), Buffer.alloc(555));
    await mkdir(join(root, "tmp", "build-x"), { recursive: true });
    await writeFile(join(root, "tmp", "build-x", "f"), Buffer.alloc(66));
    await mkdir(join(root, "locks"), { recursive: true });

    const files = await walk();
    const size = (p: string) => files.get(relative(root, p)) ?? NaN;
    const du = await diskUsage(root);
    expect(du.total).toBe(await storeBytes());
    const refsBytes = [...files].filter(([p]) => p.startsWith("refs/")).reduce((n, [, s]) => n + s, 0);
    expect(du.images).toEqual({
      count: 2,
      active: 2,
      size: refsBytes + tagged.blobs.reduce((n, b) => n + size(blobPath(b)), 0) + size(blobPath(gz.blob)) + size(gz.path),
      reclaimable: 0,
    });
    expect(du.buildCache).toEqual({ count: 2, size: size(r1) + size(r2) + 3333, reclaimable: size(r1) + size(r2) + 3333 });
    expect(du.cacheMounts).toEqual({ count: 1, size: 555, reclaimable: 555 });
    expect(du.unreferenced).toEqual({ count: 1, active: 0, size: 4444, reclaimable: 4444 });
    expect(du.tmp).toEqual({ count: 1, size: 66, reclaimable: 66 });
    expect(du.records.map((r) => r.size).sort((a, b) => a - b)).toEqual([size(r2) + 1111, size(r1) + 3333].sort((a, b) => a - b));
    expect(await content.has(dangling.diffId)).toBe(true);

    // After a default prune the unreferenced and tmp rows are empty and the total shrank by exactly their sizes.
    await prune(root);
    const after = await diskUsage(root);
    expect(after.unreferenced.size).toBe(0);
    expect(after.tmp.size).toBe(0);
    expect(after.total).toBe(du.total - 4444 - 66);
    expect(after.total).toBe(await storeBytes());
  });
});

describe("size and duration text", () => {
  it("parses the documented forms and refuses the rest", async () => {
    const { parseSize, parseDuration } = await import("../../src/store/size-text.js");
    expect(parseSize("10GB")).toBe(10e9);
    expect(parseSize("512MiB")).toBe(512 * 1024 ** 2);
    expect(parseSize("1.5G")).toBe(1.5 * 1024 ** 3);
    expect(parseSize("12.3MB")).toBe(12_300_000);
    expect(parseSize("4096")).toBe(4096);
    expect(parseSize("0B")).toBe(0);
    expect(parseSize("1kb")).toBe(1000);
    for (const bad of ["", "-1GB", "10XB", "GB", "1..5G", "1 0GB"]) expect(parseSize(bad), bad).toBeUndefined();
    expect(parseDuration("24h")).toBe(24 * 3600_000);
    expect(parseDuration("90m")).toBe(90 * 60_000);
    expect(parseDuration("7d")).toBe(7 * 86_400_000);
    expect(parseDuration("1h30m")).toBe(90 * 60_000);
    expect(parseDuration("1.5h")).toBe(90 * 60_000);
    expect(parseDuration("500ms")).toBe(500);
    for (const bad of ["", "24", "h", "1y", "1h 30m", "-1h", "yesterday"]) expect(parseDuration(bad), bad).toBeUndefined();
  });
});

describe("corrupt refs", () => {
  it("prune refuses to guess while a ref file is unreadable, and deletes nothing", async () => {
    const dangling = await layer(100);
    await mkdir(join(root, "refs"), { recursive: true });
    await writeFile(join(root, "refs", "docker.io%2Flibrary%2Fapp%3A1.json"), "{ torn");
    await expect(prune(root)).rejects.toMatchObject({ code: "REF_CORRUPT", message: expect.stringContaining("app%3A1.json") });
    expect(await content.has(dangling.diffId)).toBe(true);
    expect(await readdir(join(root, "locks"))).toEqual([]); // the GC lock was released
  });
});
