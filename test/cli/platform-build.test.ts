// Multi-platform through the CLI: a two-platform base image loaded as one index, `images`/`inspect --platform`,
// `--platform linux/arm64` builds whose RUN runs under QEMU (binfmt_misc), BuildKit's predefined platform ARGs,
// `tsbuild platforms`, and the clear error for a platform without an emulator.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile, writeFile, mkdir, access } from "node:fs/promises";
import { join } from "node:path";
import { tsbuild, tempDir } from "../helpers/cli.js";
import { ensureBinfmt, storeWithMultiBusybox } from "../helpers/platforms.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

async function project(name: string, dockerfile: string): Promise<string> {
  const ctx = join(dir.path, name);
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, "Dockerfile"), dockerfile);
  return ctx;
}

beforeAll(async () => {
  await ensureBinfmt("aarch64");
  dir = await tempDir("tsbuild-platform-");
  root = join(dir.path, "store");
  await storeWithMultiBusybox(root);
}, 120_000);
afterAll(async () => {
  await dir?.cleanup();
});

describe("a multi-platform base image in the store", () => {
  it("load keeps both platforms as one index; images and inspect --platform show them", async () => {
    const { makeMultiPlatformArchive } = await import("../helpers/platforms.js");
    const again = await r(["load", "-i", await makeMultiPlatformArchive()]);
    expect(again.stdout).toBe("Loaded image: busybox:multi (linux/amd64, linux/arm64)\n");
    const images = await r(["images"]);
    expect(images.code, images.stderr).toBe(0);
    expect(images.stdout).toMatch(/^busybox\s+multi\s+[a-f0-9]{12}/m);
    expect(images.stdout).toMatch(/^└─ linux\/amd64\s/m);
    expect(images.stdout).toMatch(/^└─ linux\/arm64\s/m);
    const json = await r(["images", "--format", "json"]);
    // docker's row fields are strings; Platforms (tsbuild's, for an index only) too.
    expect(JSON.parse(json.stdout.trim().split("\n")[0] as string).Platforms).toBe("linux/amd64,linux/arm64");

    const arm = await r(["inspect", "--platform", "linux/arm64", "busybox:multi"]);
    expect(arm.code, arm.stderr).toBe(0);
    const info = JSON.parse(arm.stdout)[0];
    expect(info.Architecture).toBe("arm64");
    expect(info.Platforms).toEqual(["linux/amd64", "linux/arm64"]);
    const host = JSON.parse((await r(["inspect", "busybox:multi"])).stdout)[0];
    expect(host.Architecture).toBe("amd64");
    expect(host.Id).not.toBe(info.Id);
  });

  it("load --platform keeps just that platform", async () => {
    const other = join(dir.path, "store-one");
    const { makeMultiPlatformArchive } = await import("../helpers/platforms.js");
    const res = await tsbuild(["load", "--root", other, "--platform", "linux/arm64", "-i", await makeMultiPlatformArchive()]);
    expect(res.code, res.stderr).toBe(0);
    const images = await tsbuild(["images", "--format", "json", "--root", other]);
    // One platform: a plain image, not an index.
    expect(JSON.parse(images.stdout.trim()).Platforms).toBeUndefined();
    const info = JSON.parse((await tsbuild(["inspect", "--root", other, "busybox:multi"])).stdout)[0];
    expect([info.Os, info.Architecture]).toEqual(["linux", "arm64"]);
  });
});

describe("--platform with one platform", () => {
  it("builds linux/arm64 on this amd64 host: arm64 base, RUN under QEMU, predefined ARGs as BuildKit sets them", async () => {
    const ctx = await project(
      "arm",
      [
        "FROM busybox:multi",
        "ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT",
        "RUN uname -m > /arch",
        'RUN echo "$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$TARGETVARIANT|$BUILDPLATFORM|$BUILDOS|$BUILDARCH|$BUILDVARIANT" > /args',
        "",
      ].join("\n"),
    );
    const out = join(dir.path, "arm-out");
    const res = await r(["build", "--platform", "linux/arm64", "-t", "arm:1", "-o", `type=local,dest=${out}`, ctx]);
    expect(res.code, res.stderr).toBe(0);
    expect((await readFile(join(out, "arch"), "utf8")).trim()).toBe("aarch64");
    expect((await readFile(join(out, "args"), "utf8")).trim()).toBe("linux/arm64|linux|arm64||linux/amd64|linux|amd64|");
    const info = JSON.parse((await r(["inspect", "--platform", "linux/arm64", "arm:1"])).stdout)[0];
    expect(info.Architecture).toBe("arm64");
    expect(info.Os).toBe("linux");
    // `arm64` alone normalises as containerd does; the same build is all cache hits.
    const again = await r(["build", "--platform", "linux/aarch64", "-t", "arm:1", ctx]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/CACHED/);
    expect(again.stderr).not.toMatch(/cache miss/i);
  });

  it("FROM --platform=$BUILDPLATFORM runs on the host while the target is arm64", async () => {
    const ctx = await project(
      "cross",
      [
        "FROM --platform=$BUILDPLATFORM busybox:multi AS build",
        "RUN uname -m > /built-on",
        "FROM busybox:multi",
        "COPY --from=build /built-on /",
        "RUN uname -m > /arch",
        "",
      ].join("\n"),
    );
    const out = join(dir.path, "cross-out");
    const res = await r(["build", "--platform", "linux/arm64", "-o", `type=local,dest=${out}`, ctx]);
    expect(res.code, res.stderr).toBe(0);
    expect((await readFile(join(out, "built-on"), "utf8")).trim()).toBe("x86_64");
    expect((await readFile(join(out, "arch"), "utf8")).trim()).toBe("aarch64");
  });

  it("a platform without an emulator fails before the build starts, saying what to install", async () => {
    const ctx = await project("mips", "FROM busybox:multi\nRUN true\n");
    const registered = await access("/proc/sys/fs/binfmt_misc/qemu-mips64el").then(
      () => true,
      () => false,
    );
    expect(registered, "this test needs a machine without a mips64el binfmt handler").toBe(false);
    const res = await r(["build", "--platform", "linux/mips64le", ctx]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("NO_EMULATOR");
    expect(res.stderr).toContain("linux/mips64le");
    expect(res.stderr).toContain("apt-get install -y qemu-user-static");
    expect(res.stderr).not.toMatch(/\[1\/2\] FROM/);
  });

  it("a single-platform base image of another platform is never used silently: NO_MATCHING_PLATFORM with what to do", async () => {
    // Named on an unused loopback port, so the pull FROM tries fails without leaving the machine.
    const name = "127.0.0.1:1/only/amd64:1";
    const { makeBusyboxArchive } = await import("../helpers/busybox-image.js");
    const loaded = await r(["load", "-t", name, "-i", await makeBusyboxArchive()]);
    expect(loaded.code, loaded.stderr).toBe(0);
    const ctx = await project("amd-only", `FROM ${name}\nRUN true\n`);
    const res = await r(["build", "--platform", "linux/arm64", ctx]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("NO_MATCHING_PLATFORM");
    expect(res.stderr).toContain("has no image for linux/arm64 (it has: linux/amd64)");
    expect(res.stderr).toContain(`tsbuild pull --platform linux/arm64 ${name}`);
  });

  it("a bad --platform is a usage error", async () => {
    const res = await r(["build", "--platform", "linux", dir.path]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("INVALID_PLATFORM");
  });
});

describe("tsbuild platforms", () => {
  it("prints the host platform and the emulated ones", async () => {
    const res = await tsbuild(["platforms"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^host:\s+linux\/amd64$/m);
    expect(res.stdout).toMatch(/^emulated:.*linux\/arm64/m);
    const json = JSON.parse((await tsbuild(["platforms", "--format", "json"])).stdout);
    expect(json.host).toBe("linux/amd64");
    expect(json.emulated.map((e: { platform: string }) => e.platform)).toContain("linux/arm64");
  });
});
