// Where run cgroups go, read from mountinfo and /proc/self/cgroup (pure), plus the mount-target resolver's table.
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseCgroupLayout, runCgroupName, runtimeCgroupsPath } from "../../src/executor/cgroups.js";
import { resolveMountTarget } from "../../src/executor/mount-targets.js";
import { deviceRuleLine, DEVICE_RULES, defaultMemoryLimit } from "../../src/executor/sandbox-policy.js";

const HYBRID_MOUNTINFO = [
  "30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755",
  "31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec shared:10 - cgroup2 cgroup2 rw",
  "33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec shared:12 - cgroup cgroup rw,memory",
  "34 30 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec shared:13 - cgroup cgroup rw,pids",
  "35 30 0:31 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec shared:14 - cgroup cgroup rw,devices",
  "36 30 0:32 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec shared:15 - cgroup cgroup rw,freezer",
].join("\n");

describe("cgroup layout", () => {
  test("hybrid v1: run cgroups go beneath our own memory cgroup in every hierarchy", () => {
    const layout = parseCgroupLayout({ mountinfo: HYBRID_MOUNTINFO, selfCgroup: "8:pids:/\n5:devices:/\n4:memory:/jobs/42\n0::/\n" });
    expect(layout).toMatchObject({ version: 1, mounts: { pids: "/sys/fs/cgroup/pids", memory: "/sys/fs/cgroup/memory", devices: "/sys/fs/cgroup/devices" } });
    expect(runtimeCgroupsPath(layout, "run-7-ab")).toBe("/jobs/42/tsbuild/run-7-ab");
  });

  test("pure v2 uses the root; none at all gives no cgroup", () => {
    const v2 = parseCgroupLayout({ mountinfo: "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", selfCgroup: "0::/user.slice/x.scope\n" });
    expect(v2).toEqual({ version: 2, mount: "/sys/fs/cgroup", self: "/user.slice/x.scope" });
    expect(runtimeCgroupsPath(v2, "run-1-x")).toBe("/tsbuild/run-1-x");
    expect(parseCgroupLayout({ mountinfo: "", selfCgroup: "" })).toBeUndefined();
    expect(runtimeCgroupsPath(undefined, "run-1-x")).toBeUndefined();
  });

  test("names carry the owner's pid; device rules in v1 syntax; memory cap from meminfo", () => {
    expect(runCgroupName("abc", 99)).toBe("run-99-abc");
    expect(DEVICE_RULES.map(deviceRuleLine).slice(0, 4)).toEqual(["a *:* rwm", "c *:* m", "b *:* m", "c 1:3 rwm"]);
    expect(defaultMemoryLimit("MemTotal:       4000000 kB\n")).toBe(3072000000);
    expect(defaultMemoryLimit("nothing")).toBeUndefined();
  });
});

describe("mount targets resolve inside the rootfs", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "tsbuild-targets-"));
    await mkdir(join(root, "etc"));
    await symlink("/oldroot/tmp", join(root, "c"));
    await symlink("../../../../../tmp", join(root, "up"));
    await symlink("/proc/self/root", join(root, "self"));
    await symlink("/", join(root, "slash"));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test.each([
    ["/c/x/sub", "/oldroot/tmp/x/sub"],
    ["/up/y", "/tmp/y"],
    ["/../../tmp/z", "/tmp/z"],
    ["relative/dir", "/relative/dir"],
    ["/dev/pipes/EOF", "/dev/pipes/EOF"],
  ])("%s → %s", async (target, want) => {
    expect(await resolveMountTarget(root, target)).toBe(want);
  });

  test.each(["/", "/slash", "/proc/self/root/tmp/x", "/self/tmp/x", "/sys/kernel", "/dev/fd/x", "/dev/pipes/.."])("%s is refused", async (target) => {
    await expect(resolveMountTarget(root, target)).rejects.toMatchObject({ code: "BAD_MOUNT_TARGET" });
  });
});
