// The cache manifest and its config, pure: blobs listed once, merging (newer wins), and what an import trusts.
import { describe, expect, test } from "vitest";
import {
  cacheBlobs,
  cacheManifest,
  CACHE_ARTIFACT_TYPE,
  keepPresent,
  mergeCacheConfigs,
  parseCacheConfig,
  type CacheConfig,
  type CacheMountEntry,
} from "../../src/cache/cache-manifest.js";
import type { Digest } from "../../src/image/types.js";

const d = (c: string) => `sha256:${c.repeat(64)}` as Digest;
const key = (c: string) => c.repeat(32);
const step = (k: string, layer?: string) => ({
  v: 1 as const,
  key: key(k),
  layer: layer ? { diffId: d(layer), size: 10 } : null,
  created: "2026-12-01T00:00:00Z",
});
const cfg = (steps: ReturnType<typeof step>[], images: CacheConfig["images"] = []): CacheConfig => ({ v: 1, steps, images });

describe("cache manifest", () => {
  test("cacheBlobs lists each layer, manifest and config once", () => {
    const c = cfg(
      [step("a", "1"), step("b", "1"), step("c")],
      [{ key: key("d"), manifest: { mediaType: "", digest: d("2"), size: 5 }, config: { mediaType: "", digest: d("3"), size: 6 } }],
    );
    expect(cacheBlobs(c).map((b) => [b.digest, b.mediaType])).toEqual([
      [d("1"), "application/vnd.oci.image.layer.v1.tar"],
      [d("2"), "application/vnd.oci.image.manifest.v1+json"],
      [d("3"), "application/vnd.oci.image.config.v1+json"],
    ]);
    expect(cacheManifest({ digest: d("4"), size: 1 }, []).artifactType).toBe(CACHE_ARTIFACT_TYPE);
  });

  test("merging keeps every key; the newer record wins", () => {
    const merged = mergeCacheConfigs(cfg([step("a", "1"), step("b")]), cfg([step("b", "2"), step("c")]));
    expect(merged.steps.map((s) => [s.key[0], s.layer?.diffId ?? null])).toEqual([
      ["a", d("1")],
      ["b", d("2")],
      ["c", null],
    ]);
    expect(mergeCacheConfigs(undefined, cfg([step("a")])).steps).toHaveLength(1);
  });

  test.each([
    ["not an object", "x"],
    ["wrong version", { v: 2, steps: [], images: [] }],
    ["steps not a list", { v: 1, steps: {}, images: [] }],
  ])("parseCacheConfig refuses %s", (_n, data) => {
    expect(parseCacheConfig(data)).toBeUndefined();
  });

  test("damaged entries are dropped, not trusted (bad key, digest that could be a path, negative size)", () => {
    const parsed = parseCacheConfig({
      v: 1,
      steps: [step("a", "1"), { ...step("b"), key: "../../x" }, { ...step("c", "1"), layer: { diffId: "sha256:../../etc", size: 1 } }],
      images: [
        { key: key("d"), manifest: { mediaType: "m", digest: d("2"), size: 5 }, config: { mediaType: "c", digest: d("3"), size: 6 } },
        { key: "nothex", manifest: { mediaType: "m", digest: d("2"), size: 5 }, config: { mediaType: "c", digest: d("3"), size: 6 } },
        { key: key("e"), manifest: { mediaType: "m", digest: d("2"), size: -1 }, config: { mediaType: "c", digest: d("3"), size: 6 } },
      ],
    });
    expect(parsed?.steps.map((s) => s.key)).toEqual([key("a")]);
    expect(parsed?.images.map((i) => i.key)).toEqual([key("d")]);
  });

  const mount = (id: string, blob: string): CacheMountEntry => ({
    id,
    sharing: "locked",
    uid: 1000,
    gid: 1000,
    mode: 0o750,
    blob: { digest: d(blob), size: 7 },
    created: "2026-12-01T00:00:00Z",
  });

  test("cache mounts: listed as plain OCI layer blobs, merged by id (newer wins), kept only while their blob is there", () => {
    const older: CacheConfig = { ...cfg([]), mounts: [mount("npm", "1"), mount("apt", "2")] };
    const newer: CacheConfig = { ...cfg([]), mounts: [mount("npm", "3")] };
    const merged = mergeCacheConfigs(older, newer);
    expect(merged.mounts?.map((m) => [m.id, m.blob.digest])).toEqual([
      ["npm", d("3")],
      ["apt", d("2")],
    ]);
    expect(cacheBlobs(merged).map((b) => [b.digest, b.mediaType])).toEqual([
      [d("3"), "application/vnd.oci.image.layer.v1.tar"],
      [d("2"), "application/vnd.oci.image.layer.v1.tar"],
    ]);
    expect(keepPresent(merged, new Set([d("3")])).mounts?.map((m) => m.id)).toEqual(["npm"]);
    expect(keepPresent(merged, new Set()).mounts).toBeUndefined();
    // A cache without mounts (and every cache tsbuild wrote before them) reads as one without mounts.
    expect(parseCacheConfig({ v: 1, steps: [], images: [] })?.mounts).toBeUndefined();
  });

  test("damaged cache mount entries are dropped (empty id, unknown sharing, mode beyond 07777, digest that could be a path)", () => {
    const parsed = parseCacheConfig({
      v: 1,
      steps: [],
      images: [],
      mounts: [
        { ...mount("ok", "1"), extra: "dropped" },
        mount("", "1"),
        { ...mount("s", "1"), sharing: "everyone" },
        { ...mount("m", "1"), mode: 0o10000 },
        { ...mount("u", "1"), uid: -1 },
        { ...mount("p", "1"), blob: { digest: "sha256:../../etc/passwd", size: 1 } },
        { ...mount("n", "1"), id: "a\0b" },
        "not an object",
      ],
    });
    expect(parsed?.mounts).toEqual([mount("ok", "1")]);
  });
});
