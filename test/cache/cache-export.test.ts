// Which cache mounts an export carries: mode=min those the target's chain declares, mode=max every stage's; and the
// --cache-to key that asks for them.
import { describe, expect, it } from "vitest";
import { exportedCacheMounts, type BuildCacheOutcome } from "../../src/cache/cache-export.js";
import type { Digest } from "../../src/image/types.js";
import { parseCacheTo } from "../../src/cli/cache-flags.js";

const D = `sha256:${"1".repeat(64)}` as Digest;
const outcome: BuildCacheOutcome = {
  manifest: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: D, size: 1 },
  config: D,
  cache: {
    targetChain: [1, 2],
    records: [],
    imageKey: "0".repeat(32),
    cacheMounts: [
      { stage: 0, id: "go-build", sharing: "shared" },
      { stage: 1, id: "npm", sharing: "locked" },
      { stage: 2, id: "npm", sharing: "locked" },
    ],
  },
};

describe("exportedCacheMounts", () => {
  it("mode=min: the target's chain only; mode=max: every stage", () => {
    expect(exportedCacheMounts(outcome, "min").map((m) => m.id)).toEqual(["npm", "npm"]);
    expect(exportedCacheMounts(outcome, "max").map((m) => m.id)).toEqual(["go-build", "npm", "npm"]);
    expect(exportedCacheMounts({ ...outcome, cache: { ...outcome.cache, cacheMounts: undefined } }, "max")).toEqual([]);
  });
});

describe("--cache-to cache-mounts=", () => {
  it.each([
    ["type=local,dest=/c,cache-mounts=true", true],
    ["type=local,dest=/c,cache-mounts=false", undefined],
    ["type=local,dest=/c", undefined],
    ["type=registry,ref=r.example/app:cache,mode=max,cache-mounts=true", true],
  ])("%s", (spec, want) => {
    expect(parseCacheTo(spec, "/").cacheMounts).toBe(want);
  });

  it("anything but true or false is a usage error", () => {
    expect(() => parseCacheTo("type=local,dest=/c,cache-mounts=1", "/")).toThrow(/cache-mounts must be true or false/);
  });
});
