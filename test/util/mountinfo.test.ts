// The one mountinfo parser: typed fields, octal escapes undone, optional fields, and "what is mounted below DIR".
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { mountsUnder, parseMountinfo, readMountinfo, unescapeMountField } from "../../src/util/mountinfo.js";
import { parseCgroupLayout } from "../../src/executor/cgroups.js";

const SAMPLE = [
  "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro",
  "35 22 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate",
  "40 22 0:40 / /tmp/store/tmp/run\\0401/merged rw,relatime - overlay overlay rw,lowerdir=/a:/b,upperdir=/u,workdir=/w",
  "41 40 8:1 /home/me/my\\011dir /tmp/store/tmp/run\\0401/merged/ctx ro,relatime master:3 shared:4 - ext4 /dev/sda1 rw",
  "42 22 8:1 /x /tmp/store/tmp/back\\134slash\\012nl rw - ext4 /dev/sda1 rw",
  "43 22 0:50 / /tmp/store/tmp/run1 rw - tmpfs tmp\\040fs rw,size=1024k",
  "garbage line",
  "",
].join("\n");

describe("parseMountinfo", () => {
  it("returns typed entries with unescaped paths", () => {
    const m = parseMountinfo(SAMPLE);
    expect(m).toHaveLength(6);
    expect(m[0]).toEqual({
      mountId: 22,
      parentId: 1,
      device: "8:1",
      root: "/",
      mountPoint: "/",
      mountOptions: ["rw", "relatime"],
      optionalFields: ["shared:1"],
      fsType: "ext4",
      source: "/dev/sda1",
      superOptions: ["rw", "errors=remount-ro"],
    });
    expect(m[2]?.mountPoint).toBe("/tmp/store/tmp/run 1/merged");
    expect(m[3]).toMatchObject({
      root: "/home/me/my\tdir",
      mountPoint: "/tmp/store/tmp/run 1/merged/ctx",
      optionalFields: ["master:3", "shared:4"],
      mountOptions: ["ro", "relatime"],
    });
    expect(m[4]?.mountPoint).toBe("/tmp/store/tmp/back\\slash\nnl");
    expect(m[5]).toMatchObject({ fsType: "tmpfs", source: "tmp fs", superOptions: ["rw", "size=1024k"] });
  });
  it.each([
    ["\\040", " "],
    ["a\\011b", "a\tb"],
    ["\\012", "\n"],
    ["\\134", "\\"],
    ["no escapes", "no escapes"],
    ["\\04", "\\04"],
  ])("unescapes %j", (raw, want) => {
    expect(unescapeMountField(raw)).toBe(want);
  });
  it("reads this process's table", async () => {
    const m = await readMountinfo();
    expect(m.some((e) => e.mountPoint === "/")).toBe(true);
  });
});

describe("mountsUnder", () => {
  it("lists mounts at or below a dir once, deepest first, matching whole path components", async () => {
    const table = parseMountinfo(SAMPLE);
    expect(await mountsUnder("/tmp/store/tmp", table)).toEqual([
      "/tmp/store/tmp/run 1/merged/ctx",
      "/tmp/store/tmp/run 1/merged",
      "/tmp/store/tmp/back\\slash\nnl",
      "/tmp/store/tmp/run1",
    ]);
    expect(await mountsUnder("/tmp/store/tmp/run", table)).toEqual([]);
    expect(await mountsUnder("/tmp/store/tmp/run1/", table)).toEqual(["/tmp/store/tmp/run1"]);
    expect((await mountsUnder("/", table))[0]).toBe("/tmp/store/tmp/run 1/merged/ctx");
  });
  it("finds nothing under a fresh temp dir", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tsbuild-mountinfo-"));
    try {
      expect(await mountsUnder(dir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("cgroup layout from mountinfo", () => {
  it("finds a cgroup2 mount and v1 controllers through the shared parser", () => {
    expect(parseCgroupLayout({ mountinfo: SAMPLE, selfCgroup: "0::/user.slice\n" })).toEqual({ version: 2, mount: "/sys/fs/cgroup", self: "/user.slice" });
    const v1 = "30 22 0:26 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n31 22 0:27 / /sys/fs/cgroup/my\\040mem rw - cgroup cgroup rw,memory\n";
    expect(parseCgroupLayout({ mountinfo: v1, selfCgroup: "3:pids:/a\n2:memory:/b\n" })).toEqual({
      version: 1,
      mounts: { pids: "/sys/fs/cgroup/pids", memory: "/sys/fs/cgroup/my mem" },
      self: { pids: "/a", memory: "/b" },
    });
  });
});
