// The store layout: every path stays under the root, no two kinds of data share a path, names that are not digests
// or keys never become paths, and the names are exactly those existing stores already use (there is no migration).
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreError } from "../../src/errors.js";
import type { Digest } from "../../src/image/types.js";
import { recordLayerSource, readLayerSources } from "../../src/registry/layer-sources.js";
import { getStepRecord, putImageRecord } from "../../src/cache/records.js";
import { openContentStore } from "../../src/store/content-store.js";
import { BUILD_LOCK_NAME, isStoreKey, refKey, storeLayout } from "../../src/store/layout.js";
import { tempDir } from "../helpers/cli.js";

const ROOT = "/srv/tsbuild-store";
const HEX = "ab".repeat(32);
const D = `sha256:${HEX}` as Digest;
const KEY = "0123456789abcdef0123456789abcdef";

/** Crafted digests: each must be refused before it is joined into a path. */
const BAD_DIGESTS = [
  "sha256:../../x",
  `sha256:${HEX}/../../x`,
  `sha256:${"AB".repeat(32)}`,
  `sha512:${HEX}${HEX}`,
  HEX,
  "sha256:",
  `sha256:${HEX}0`,
  `sha256:${HEX.slice(1)}`,
  "",
];
const BAD_KEYS = ["..", "../x", `${KEY}/..`, KEY.toUpperCase(), KEY.slice(1), `${KEY}0`, "", "."];

const under = (root: string, p: string) => resolve(p).startsWith(resolve(root) + sep);

/** One example path of every kind (directories and files). */
function everyPath(root: string): Record<string, string> {
  const l = storeLayout(root);
  return {
    blobsDir: l.blobsDir,
    blob: l.blob(D),
    refsDir: l.refsDir,
    ref: l.ref("docker.io/library/busybox:latest"),
    tmpDir: l.tmpDir,
    tmpPrefix: l.tmpPrefix("build"),
    locksDir: l.locksDir,
    gcLock: l.gcLock,
    buildLock: l.buildLock(42, "00ff"),
    stepRecordsDir: l.stepRecordsDir,
    stepRecord: l.stepRecord(KEY),
    imageRecordsDir: l.imageRecordsDir,
    imageRecord: l.imageRecord(KEY),
    explainDir: l.explainDir,
    explainRecord: l.explainRecord(KEY),
    contextCacheDir: l.contextCacheDir,
    contextCache: l.contextCache(KEY),
    compressedDir: l.compressedDir,
    compressed: l.compressed(D),
    distributionDir: l.distributionDir,
    layerSources: l.layerSources(D),
    cacheMountsDir: l.cacheMountsDir,
    cacheMount: l.cacheMount("/root/.npm"),
    snapshotsDir: l.snapshotsDir,
    snapshot: l.snapshot(KEY),
  };
}

describe("storeLayout", () => {
  it("keeps the names existing stores use", () => {
    const rel = Object.fromEntries(Object.entries(everyPath(ROOT)).map(([k, p]) => [k, relative(ROOT, p)]));
    expect(rel).toEqual({
      blobsDir: "blobs/sha256",
      blob: `blobs/sha256/${HEX}`,
      refsDir: "refs",
      ref: "refs/docker.io%2Flibrary%2Fbusybox%3Alatest.json",
      tmpDir: "tmp",
      tmpPrefix: "tmp/build-",
      locksDir: "locks",
      gcLock: "locks/gc.lock",
      buildLock: "locks/build-42-00ff.lock",
      stepRecordsDir: "cache/steps",
      stepRecord: `cache/steps/01/${KEY}.json`,
      imageRecordsDir: "cache/images",
      imageRecord: `cache/images/${KEY}.json`,
      explainDir: "cache/explain",
      explainRecord: `cache/explain/${KEY}.json`,
      contextCacheDir: "cache/context",
      contextCache: `cache/context/${KEY}.json`,
      compressedDir: "compressed/gzip",
      compressed: `compressed/gzip/${HEX}.json`,
      distributionDir: "distribution",
      layerSources: `distribution/${HEX}.json`,
      cacheMountsDir: "cache-mounts",
      // sha256("/root/.npm"): the name run-mounts has always given the cache mount with that id.
      cacheMount: `cache-mounts/${createHash("sha256").update("/root/.npm").digest("hex")}`,
      snapshotsDir: "snapshots",
      snapshot: `snapshots/${KEY}`,
    });
    expect(storeLayout(ROOT).root).toBe(ROOT);
  });

  it("puts every path under the root", () => {
    for (const [kind, p] of Object.entries(everyPath(ROOT))) expect(under(ROOT, p), `${kind}: ${p}`).toBe(true);
    // Also for a relative root and one with a trailing slash.
    for (const root of ["store", "/srv/x/"]) for (const p of Object.values(everyPath(root))) expect(under(root, p)).toBe(true);
  });

  it("gives no two kinds the same path, and no kind's directory lies inside another's", () => {
    const paths = Object.entries(everyPath(ROOT));
    const seen = new Map<string, string>();
    for (const [kind, p] of paths) {
      expect(seen.get(p), `${kind} and ${seen.get(p)} share ${p}`).toBeUndefined();
      seen.set(p, kind);
    }
    const dirs = paths.filter(([k]) => k.endsWith("Dir"));
    for (const [a, pa] of dirs) {
      for (const [b, pb] of dirs) {
        if (a !== b) expect(pb.startsWith(pa + sep), `${b} inside ${a}`).toBe(false);
      }
    }
    // Each file kind lies in its own directory.
    const l = storeLayout(ROOT);
    const owner: [string, string][] = [
      [l.blob(D), l.blobsDir],
      [l.ref("x"), l.refsDir],
      [l.gcLock, l.locksDir],
      [l.buildLock(1, "ab"), l.locksDir],
      [l.stepRecord(KEY), l.stepRecordsDir],
      [l.imageRecord(KEY), l.imageRecordsDir],
      [l.explainRecord(KEY), l.explainDir],
      [l.contextCache(KEY), l.contextCacheDir],
      [l.compressed(D), l.compressedDir],
      [l.layerSources(D), l.distributionDir],
      [l.snapshot(KEY), l.snapshotsDir],
      [l.tmpPrefix("snapshot-1"), l.tmpDir],
    ];
    for (const [file, dir] of owner) expect(file.startsWith(dir + sep), `${file} in ${dir}`).toBe(true);
  });

  it("refuses a digest that is not sha256:<64 hex> before it becomes a path", () => {
    const l = storeLayout(ROOT);
    for (const bad of BAD_DIGESTS) {
      for (const f of [l.blob, l.compressed, l.layerSources]) {
        let err: unknown;
        try {
          f(bad as Digest);
        } catch (e) {
          err = e;
        }
        expect(err, bad).toBeInstanceOf(StoreError);
        expect(err).toMatchObject({ code: "INVALID_DIGEST" });
      }
    }
  });

  it("refuses cache keys that are not 32 lower-case hex digits", () => {
    const l = storeLayout(ROOT);
    for (const bad of BAD_KEYS) {
      expect(isStoreKey(bad)).toBe(false);
      for (const f of [l.stepRecord, l.imageRecord, l.explainRecord, l.contextCache, l.snapshot])
        expect(() => f(bad), bad).toThrow(expect.objectContaining({ code: "INVALID_KEY" }));
    }
    expect(isStoreKey(KEY)).toBe(true);
  });

  it("reads back only real digests from file names", () => {
    const l = storeLayout(ROOT);
    expect(l.blobDigest(HEX)).toBe(D);
    expect(l.compressedLayer(`${HEX}.json`)).toBe(D);
    for (const n of [".tmp-1-abc", `${HEX}.json`, "..", `${HEX}x`, ""]) expect(l.blobDigest(n)).toBeUndefined();
    for (const n of [HEX, `.${HEX}.json.tmp-1-ab`, "x.json"]) expect(l.compressedLayer(n)).toBeUndefined();
  });

  it("keeps image names inside refs/ whatever they contain", () => {
    const l = storeLayout(ROOT);
    for (const name of ["../../etc/passwd", "..", ".", "a/../../b", "x".repeat(5000), ".hidden", "*"]) {
      const p = l.ref(name);
      expect(p.startsWith(l.refsDir + sep), name).toBe(true);
      expect(refKey(name)).not.toContain("/");
      expect(refKey(name).startsWith(".")).toBe(false);
    }
  });

  it("names build locks the way lock cleanup recognises them, and refuses unsafe ones", () => {
    const l = storeLayout(ROOT);
    expect(BUILD_LOCK_NAME.exec("build-42-00ff.lock")?.[1]).toBe("42");
    expect(() => l.buildLock(1, "../x")).toThrow(StoreError);
    expect(() => l.tmpPrefix("../x")).toThrow(StoreError);
    expect(() => l.tmpPrefix(".hidden")).toThrow(StoreError);
  });
});

describe("modules that write into the store refuse crafted names", () => {
  let dir: { path: string; cleanup(): Promise<void> };
  let root: string;
  beforeEach(async () => {
    dir = await tempDir("tsbuild-layout-");
    root = join(dir.path, "a", "store");
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  it("layer sources: a crafted diff_id is refused, nothing is written outside the store", async () => {
    const src = { registry: "r", repository: "x", digest: D, size: 1, mediaType: "m" };
    await expect(recordLayerSource(root, "sha256:../../../escape" as Digest, src)).rejects.toMatchObject({ code: "INVALID_DIGEST" });
    expect(existsSync(join(dir.path, "escape.json"))).toBe(false);
    expect(existsSync(join(dir.path, "a", "escape.json"))).toBe(false);
    expect(await readdir(dir.path)).toEqual([]);
    await recordLayerSource(root, D, src);
    expect(await readLayerSources(root, D)).toEqual([src]);
  });

  it("content store and records refuse crafted digests and keys", async () => {
    const cs = openContentStore(root);
    expect(() => cs.path("sha256:../../x" as Digest)).toThrow(StoreError);
    expect(() => cs.write("sha256:../../x" as Digest)).toThrow(StoreError);
    await expect(cs.has("sha256:../../x" as Digest)).rejects.toBeInstanceOf(StoreError);
    await expect(getStepRecord(root, "../../x")).rejects.toMatchObject({ code: "INVALID_KEY" });
    await expect(putImageRecord(root, "../../x", { mediaType: "m", digest: D, size: 1 })).rejects.toMatchObject({ code: "INVALID_KEY" });
    expect(existsSync(join(dir.path, "a", "x"))).toBe(false);
    expect(existsSync(join(dir.path, "a", "x.json"))).toBe(false);
  });
});
