// `tsbuild doctor`'s checks, each against fake inputs: a PATH of fake tools, fake /proc and /etc trees, cgroup
// mountinfo texts, a fake binfmt_misc directory; and runDoctor's verdict over a whole fake machine.
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  checkBinfmt,
  checkCgroups,
  checkIdMapTools,
  checkImageTools,
  checkRuntime,
  checkStore,
  checkSubordinateIds,
  checkUserNamespaces,
  runDoctor,
  subordinateIdCount,
} from "../../src/api/doctor.js";
import { requireRunnable } from "../../src/executor/binfmt.js";
import { selectExecutor } from "../../src/executor/select-executor.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsbuild-doctor-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A PATH directory holding executables of these names (they never run: the checks only look for them). */
async function fakePath(...tools: string[]): Promise<string> {
  const d = await mkdtemp(join(dir, "bin-"));
  for (const t of tools) {
    await writeFile(join(d, t), "#!/bin/sh\nexit 0\n");
    await chmod(join(d, t), 0o755);
  }
  return d;
}

/** A /proc tree with the given /proc/sys files (path below sys → content). */
async function fakeProc(sys: Record<string, string>): Promise<string> {
  const d = await mkdtemp(join(dir, "proc-"));
  for (const [p, text] of Object.entries(sys)) {
    await mkdir(join(d, "sys", p, ".."), { recursive: true });
    await writeFile(join(d, "sys", p), `${text}\n`);
  }
  return d;
}

async function fakeEtc(subuid: string, subgid: string): Promise<string> {
  const d = await mkdtemp(join(dir, "etc-"));
  await writeFile(join(d, "subuid"), subuid);
  await writeFile(join(d, "subgid"), subgid);
  return d;
}

describe("RUN runtime", () => {
  test("none installed is missing, with the package to install", async () => {
    const c = await checkRuntime(await fakePath());
    expect(c).toMatchObject({ id: "runtime", status: "missing", fix: expect.stringContaining("apt-get install -y crun") });
  });
  test("names the runtime --executor auto picks (crun before runc before bwrap) and the others", async () => {
    const c = await checkRuntime(await fakePath("bwrap", "runc"));
    expect(c.status).toBe("ok");
    expect(c.detail).toMatch(/^runc \(.*\/runc\) for --executor auto; also installed: bwrap$/);
    expect(c.fix).toBeUndefined();
  });
});

describe("user namespaces", () => {
  test("max_user_namespaces=0 is missing for a rootless build, a warning for root", async () => {
    const proc = await fakeProc({ "user/max_user_namespaces": "0" });
    expect(await checkUserNamespaces(proc, 1000, false)).toMatchObject({
      status: "missing",
      detail: expect.stringContaining("user.max_user_namespaces is 0"),
      fix: expect.stringContaining("sysctl -w user.max_user_namespaces="),
    });
    expect(await checkUserNamespaces(proc, 0, false)).toMatchObject({ status: "warning" });
  });
  test("Ubuntu 24.04's AppArmor restriction blocks a non-root user", async () => {
    const proc = await fakeProc({ "user/max_user_namespaces": "63000", "kernel/apparmor_restrict_unprivileged_userns": "1" });
    expect(await checkUserNamespaces(proc, 1000, false)).toMatchObject({
      status: "missing",
      detail: expect.stringContaining("AppArmor"),
      fix: expect.stringContaining("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"),
    });
    // Root is not an unprivileged user: the restriction does not apply to it.
    expect(await checkUserNamespaces(proc, 0, false)).toMatchObject({ status: "ok" });
  });
  test("Debian's unprivileged_userns_clone=0 blocks a non-root user", async () => {
    const proc = await fakeProc({ "user/max_user_namespaces": "63000", "kernel/unprivileged_userns_clone": "0" });
    expect(await checkUserNamespaces(proc, 1000, false)).toMatchObject({ status: "missing", fix: expect.stringContaining("unprivileged_userns_clone=1") });
  });
  test("allowed, and no file at all means a kernel without user namespaces", async () => {
    const ok = await fakeProc({
      "user/max_user_namespaces": "63000",
      "kernel/unprivileged_userns_clone": "1",
      "kernel/apparmor_restrict_unprivileged_userns": "0",
    });
    expect(await checkUserNamespaces(ok, 1000, false)).toMatchObject({ status: "ok", detail: expect.stringContaining("63000") });
    expect(await checkUserNamespaces(await fakeProc({}), 1000, false)).toMatchObject({
      status: "missing",
      detail: expect.stringContaining("no user namespaces"),
    });
  });
});

describe("id mapping for a non-root user", () => {
  test("newuidmap/newgidmap missing from PATH is a warning naming the uidmap package", async () => {
    expect(await checkIdMapTools(await fakePath("newgidmap"), 1000)).toMatchObject({
      status: "warning",
      detail: expect.stringContaining("newuidmap"),
      fix: "apt-get install -y uidmap",
    });
    expect(await checkIdMapTools(await fakePath("newuidmap", "newgidmap"), 1000)).toMatchObject({ status: "ok" });
    expect(await checkIdMapTools(await fakePath(), 0)).toMatchObject({ status: "ok" });
  });
  test("a missing subuid entry is a warning with the usermod command for this user", async () => {
    const etc = await fakeEtc("alice:100000:65536\n", "builder:100000:65536\nalice:100000:65536\n");
    const c = await checkSubordinateIds(etc, 1001, "builder");
    expect(c).toMatchObject({ status: "warning", fix: "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 builder" });
    expect(c.detail).toContain(join(etc, "subuid"));
    expect(c.detail).not.toContain(join(etc, "subgid"));
  });
  test("ranges by name or uid are ok; too few ids is a warning; root needs none", async () => {
    expect(await checkSubordinateIds(await fakeEtc("1001:100000:65536\n", "builder:200000:65536\n"), 1001, "builder")).toMatchObject({ status: "ok" });
    expect(await checkSubordinateIds(await fakeEtc("builder:100000:1000\n", "builder:100000:65536\n"), 1001, "builder")).toMatchObject({
      status: "warning",
      detail: expect.stringContaining("subuid: 1000 ids"),
    });
    expect(await checkSubordinateIds(join(dir, "no-etc"), 0, "root")).toMatchObject({ status: "ok" });
    expect(subordinateIdCount("# comment\nbuilder:1:2\nbuilder:x:3\nbuilder:10:5\n", "builder", 7)).toBe(7);
  });
});

describe("cgroups", () => {
  test("v2 and v1 layouts, and none", () => {
    const v2 = { mountinfo: "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", selfCgroup: "0::/user.slice\n" };
    expect(checkCgroups(v2, 0)).toMatchObject({ status: "ok", detail: "cgroup v2 at /sys/fs/cgroup" });
    expect(checkCgroups(v2, 1000)).toMatchObject({ status: "ok" });
    const v1 = {
      mountinfo: [
        "30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755",
        "33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
        "34 30 0:30 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids",
      ].join("\n"),
      selfCgroup: "8:pids:/\n4:memory:/\n",
    };
    expect(checkCgroups(v1, 0)).toMatchObject({ status: "ok", detail: expect.stringMatching(/^cgroup v1 \(.*pids/) });
    expect(checkCgroups(v1, 1000)).toMatchObject({ status: "warning", fix: expect.stringContaining("cgroup v2") });
    expect(checkCgroups(undefined, 0)).toMatchObject({ status: "warning", detail: expect.stringContaining("no cgroup") });
  });
});

describe("binfmt, store, optional tools", () => {
  test("no emulator is a warning naming qemu-user-static; an F-flag handler is ok", async () => {
    const none = await mkdtemp(join(dir, "binfmt-"));
    await writeFile(join(none, "register"), "");
    await writeFile(join(none, "status"), "enabled\n");
    expect(await checkBinfmt(none)).toMatchObject({ status: "warning", fix: expect.stringContaining("apt-get install -y qemu-user-static") });
    // A foreign architecture to this host: arm64 on amd64, amd64 on arm64.
    const magic = process.arch === "arm64" ? "7f454c4602010100000000000000000002003e00" : "7f454c460201010000000000000000000200b700";
    await writeFile(join(none, "qemu-x"), `enabled\ninterpreter /usr/libexec/qemu-binfmt/x\nflags: F\noffset 0\nmagic ${magic}\n`);
    expect(await checkBinfmt(none)).toMatchObject({ status: "ok", detail: expect.stringContaining("emulated: linux/") });
  });
  test("the store: writable with free space; before its first build, the directory it would be made in", async () => {
    const c = await checkStore(join(dir, "not", "yet"));
    expect(c).toMatchObject({ status: "ok", detail: expect.stringMatching(/not yet made.*GiB free/) });
  });
  test("skopeo/umoci are optional: a warning, never missing", async () => {
    expect(await checkImageTools(await fakePath("skopeo"))).toMatchObject({ status: "warning", fix: "apt-get install -y umoci" });
  });
});

describe("runDoctor", () => {
  test("a fake machine without a runtime and with user namespaces off: not ok, and says why", async () => {
    const proc = await fakeProc({ "user/max_user_namespaces": "0" });
    const r = await runDoctor({
      env: { PATH: await fakePath("slirp4netns") },
      uid: 1001,
      user: "builder",
      procRoot: proc,
      etcRoot: await fakeEtc("", ""),
      storeRoot: join(dir, "store"),
      probeMounts: false,
    });
    expect(r.ok).toBe(false);
    expect(r.checks.map((c) => c.id)).toEqual([
      "runtime",
      "network",
      "userns",
      "idmap",
      "subids",
      "overlay",
      "overlay-userns",
      "fuse-overlayfs",
      "cgroups",
      "binfmt",
      "store",
      "image-tools",
    ]);
    const by = Object.fromEntries(r.checks.map((c) => [c.id, c]));
    expect(by["runtime"]?.status).toBe("missing");
    expect(by["userns"]?.status).toBe("missing");
    expect(by["idmap"]?.status).toBe("warning");
    expect(by["subids"]?.status).toBe("warning");
    expect(by["cgroups"]).toMatchObject({ status: "warning", detail: expect.stringContaining("no cgroup") });
  });
});

describe("build failures point to tsbuild doctor", () => {
  test("no runtime (NO_RUNTIME) and no emulator (NO_EMULATOR)", async () => {
    const saved = process.env["PATH"];
    process.env["PATH"] = await fakePath();
    try {
      await expect(selectExecutor("auto")).rejects.toMatchObject({ code: "NO_RUNTIME", hint: expect.stringContaining("tsbuild doctor") });
    } finally {
      process.env["PATH"] = saved;
    }
    const empty = await mkdtemp(join(dir, "binfmt-"));
    await writeFile(join(empty, "register"), "");
    await writeFile(join(empty, "status"), "enabled\n");
    const foreign = { os: "linux", architecture: process.arch === "s390x" ? "ppc64le" : "s390x" };
    await expect(requireRunnable([foreign], empty)).rejects.toMatchObject({ code: "NO_EMULATOR", hint: expect.stringContaining("tsbuild doctor") });
  });
});
