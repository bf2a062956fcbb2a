// Platform rules as containerd's `platforms` package has them: normalisation, the compatibility ladder, and the
// index picker that pull and load share.
import { describe, expect, it } from "vitest";
import { ArchiveError, RegistryError, TsbuildError } from "../../src/errors.js";
import {
  compatiblePlatforms,
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  parsePlatformList,
  pickManifest,
  platformDirName,
  platformMatches,
} from "../../src/image/platform.js";
import type { Descriptor, Platform } from "../../src/image/types.js";

const p = (spec: string): Platform => {
  const [os, architecture, variant] = spec.split("/") as [string, string, string | undefined];
  return { os, architecture, ...(variant !== undefined ? { variant } : {}) };
};

describe("normalizePlatform (containerd normalizeArch)", () => {
  // [input, canonical]: the table of containerd's platforms_test.go / database.go.
  const cases: [string, string][] = [
    ["linux/amd64", "linux/amd64"],
    ["linux/x86_64", "linux/amd64"],
    ["linux/x86-64", "linux/amd64"],
    ["linux/amd64/v1", "linux/amd64"],
    ["linux/amd64/v3", "linux/amd64/v3"],
    ["linux/i386", "linux/386"],
    ["linux/aarch64", "linux/arm64"],
    ["linux/arm64/v8", "linux/arm64"],
    ["linux/arm64/8", "linux/arm64"],
    ["linux/arm64/v8.0", "linux/arm64"],
    ["linux/arm64/v8.2", "linux/arm64/v8.2"],
    ["linux/arm64/9", "linux/arm64/v9"],
    ["linux/aarch64/v9.0", "linux/arm64/v9"],
    ["linux/arm", "linux/arm/v7"],
    ["linux/arm/7", "linux/arm/v7"],
    ["linux/arm/6", "linux/arm/v6"],
    ["linux/arm/5", "linux/arm/v5"],
    ["linux/arm/8", "linux/arm/v8"],
    ["linux/armhf", "linux/arm/v7"],
    ["linux/armel", "linux/arm/v6"],
    ["Linux/AMD64", "linux/amd64"],
    ["macos/arm64", "darwin/arm64"],
    ["linux/s390x", "linux/s390x"],
    ["windows/amd64", "windows/amd64"],
  ];
  it.each(cases)("%s → %s", (input, want) => {
    expect(formatPlatform(normalizePlatform(p(input)))).toBe(want);
  });
  it("keeps os.version", () => {
    expect(normalizePlatform({ os: "windows", architecture: "x86_64", "os.version": "10.0.17763.1" })).toEqual({
      os: "windows",
      architecture: "amd64",
      "os.version": "10.0.17763.1",
    });
  });
});

describe("parsePlatform", () => {
  it.each([
    ["linux/amd64", { os: "linux", architecture: "amd64" }],
    ["linux/arm64", { os: "linux", architecture: "arm64" }],
    ["linux/arm64/v8", { os: "linux", architecture: "arm64" }],
    ["linux/aarch64", { os: "linux", architecture: "arm64" }],
    ["linux/arm", { os: "linux", architecture: "arm", variant: "v7" }],
    ["linux/arm/v6", { os: "linux", architecture: "arm", variant: "v6" }],
    ["Linux/x86_64", { os: "linux", architecture: "amd64" }],
  ])("%s", (spec, want) => {
    expect(parsePlatform(spec)).toEqual(want);
  });
  it.each(["linux", "linux/", "a/b/c/d", "linux/amd 64", ""])("rejects %j with INVALID_PLATFORM", (bad) => {
    expect(() => parsePlatform(bad)).toThrow(expect.objectContaining({ code: "INVALID_PLATFORM" }));
  });
});

describe("hostPlatform", () => {
  it("is a normalised linux platform", () => {
    const h = hostPlatform();
    expect(h.os).toBe("linux");
    expect(normalizePlatform(h)).toEqual(h);
    if (process.arch === "x64") expect(h).toEqual({ os: "linux", architecture: "amd64" });
    if (process.arch === "arm64") expect(h).toEqual({ os: "linux", architecture: "arm64" });
  });
});

describe("compatiblePlatforms / platformMatches (containerd platforms.Only)", () => {
  it.each([
    ["linux/amd64", ["linux/amd64", "linux/386"]],
    ["linux/amd64/v3", ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"]],
    ["linux/arm/v7", ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]],
    ["linux/arm/v5", ["linux/arm/v5"]],
    ["linux/arm64", ["linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]],
    ["linux/arm64/v8.2", ["linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]],
    ["linux/s390x", ["linux/s390x"]],
  ])("%s runs %j", (want, list) => {
    expect(compatiblePlatforms(p(want)).map(formatPlatform)).toEqual(list);
  });
  it.each([
    ["linux/arm64", "linux/arm64/v8", true],
    ["linux/aarch64", "linux/arm64", true],
    ["linux/arm/v7", "linux/arm", true],
    ["linux/arm/v7", "linux/arm/v6", true],
    ["linux/arm/v6", "linux/arm/v7", false],
    ["linux/amd64", "linux/386", true],
    ["linux/amd64", "linux/amd64/v2", false],
    ["linux/amd64", "windows/amd64", false],
    ["linux/arm64", "linux/amd64", false],
  ])("want %s, have %s → %s", (want, have, ok) => {
    expect(platformMatches(p(want), p(have))).toBe(ok);
  });
});

describe("pickManifest", () => {
  const d = (spec: string | undefined, extra: Partial<Platform> = {}, n = 0): Descriptor => ({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: `sha256:${String(n).padStart(64, "0")}`,
    size: 1,
    ...(spec ? { platform: { ...p(spec), ...extra } } : {}),
  });
  const index = [
    d("unknown/unknown", {}, 0),
    d("linux/amd64", {}, 1),
    d("linux/arm/v6", {}, 2),
    d("linux/arm/v7", {}, 3),
    d("linux/arm64/v8", {}, 4),
    d("linux/386", {}, 5),
  ];
  const pick = (want: string, list = index) => pickManifest(list, p(want), { what: "img:1", errorClass: RegistryError });

  it.each([
    ["linux/arm/v7", 3],
    ["linux/arm", 3],
    ["linux/armhf", 3],
    ["linux/arm/v6", 2],
    ["linux/arm64", 4],
    ["linux/aarch64", 4],
    ["linux/arm64/v8", 4],
    ["linux/amd64", 1],
    ["linux/x86_64", 1],
    ["linux/386", 5],
  ])("%s picks entry %i", (want, i) => {
    expect(pick(want)).toBe(index[i]);
  });
  it("falls back down the ladder: arm/v8 takes arm/v7, amd64 takes 386, arm64 takes arm", () => {
    expect(pick("linux/arm/v8")).toBe(index[3]);
    expect(pick("linux/amd64", [index[0] as Descriptor, index[5] as Descriptor])).toBe(index[5]);
    expect(pick("linux/arm64", [d("linux/arm/v6", {}, 7), d("linux/arm/v7", {}, 8)]).digest).toBe(d(undefined, {}, 8).digest);
  });
  it("prefers the exact match over an earlier fallback, and index order among equals", () => {
    const list = [d("linux/386", {}, 1), d("linux/amd64", {}, 2), d("linux/amd64", {}, 3)];
    expect(pick("linux/amd64", list)).toBe(list[1]);
  });
  it("ignores os.version", () => {
    const list = [d("linux/amd64", { "os.version": "6.1" }, 9)];
    expect(pick("linux/amd64", list)).toBe(list[0]);
    expect(pickManifest(list, { os: "linux", architecture: "amd64", "os.version": "5.10" }, { what: "x", errorClass: RegistryError })).toBe(list[0]);
  });
  it("takes an entry without a platform only as a last resort", () => {
    const list = [d(undefined, {}, 1), d("linux/arm64", {}, 2)];
    expect(pick("linux/arm64", list)).toBe(list[1]);
    expect(pick("linux/amd64", list)).toBe(list[0]);
  });
  it("no match: NO_MATCHING_PLATFORM in the caller's error class, listing the platforms the index has", () => {
    let err: unknown;
    try {
      pick("linux/s390x");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegistryError);
    expect(err).toMatchObject({
      code: "NO_MATCHING_PLATFORM",
      message: "img:1 has no image for linux/s390x (it has: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, linux/386)",
    });
    expect((err as TsbuildError).hint).toBe("choose one with --platform, e.g. --platform linux/amd64");
    expect(() => pickManifest([index[0] as Descriptor], p("linux/amd64"), { what: "a.tar", errorClass: ArchiveError })).toThrow(
      expect.objectContaining({
        name: "ArchiveError",
        code: "NO_MATCHING_PLATFORM",
        message: "a.tar has no image for linux/amd64 (it has: no platform-specific images)",
      }),
    );
  });
});

describe("parsePlatformList and platformDirName (--platform a,b; type=local directories)", () => {
  it("parses a comma list, normalising each and dropping duplicates after normalisation, in order", () => {
    expect(parsePlatformList("linux/amd64,linux/arm64").map(formatPlatform)).toEqual(["linux/amd64", "linux/arm64"]);
    expect(parsePlatformList("linux/aarch64, linux/arm64/v8,linux/arm").map(formatPlatform)).toEqual(["linux/arm64", "linux/arm/v7"]);
  });
  it("refuses an empty list and a bad entry with INVALID_PLATFORM", () => {
    for (const bad of ["", ",", "linux/amd64,linux"]) expect(() => parsePlatformList(bad)).toThrow(expect.objectContaining({ code: "INVALID_PLATFORM" }));
  });
  it("names directories as BuildKit's local exporter does", () => {
    expect(platformDirName(p("linux/amd64"))).toBe("linux_amd64");
    expect(platformDirName(p("linux/arm"))).toBe("linux_arm_v7");
    expect(platformDirName(p("linux/aarch64"))).toBe("linux_arm64");
  });
});
