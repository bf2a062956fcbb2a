import { lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { ProcessSpec } from "../../src/executor/types.js";
import type { LayerEntry } from "../../src/layer/types.js";
import { mountsUnder } from "../../src/snapshot/mounts.js";
import { runStep } from "../../src/solver/run-step.js";
import { createSnapshotter } from "../../src/snapshot/snapshotter.js";
import { makeBusyboxRootfs } from "../helpers/busybox-rootfs.js";
import { captureIO, listContainers, makeExecutor, PATH_ENV, type ExecutorName } from "../helpers/sandbox.js";

const CONFIGS: { executor: ExecutorName; snapshotter: "overlay" | "fuse-overlayfs" | "copy" }[] = [
  { executor: "crun", snapshotter: "overlay" },
  { executor: "runc", snapshotter: "overlay" },
  { executor: "bwrap", snapshotter: "overlay" },
  { executor: "crun", snapshotter: "copy" },
  { executor: "crun", snapshotter: "fuse-overlayfs" },
  { executor: "bwrap", snapshotter: "copy" },
];

describe.each(CONFIGS)("runStep with $executor + $snapshotter", ({ executor: exName, snapshotter }) => {
  let base: string;
  let rootfs: string;
  let scratch: string;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), "tsbuild-runstep-"));
    rootfs = await makeBusyboxRootfs(join(base, "rootfs"));
    scratch = join(base, "scratch");
    await mkdir(scratch);
    await writeFile(join(rootfs, "etc/motd"), "old\n");
    await mkdir(join(rootfs, "dir/sub"), { recursive: true });
    await writeFile(join(rootfs, "dir/a"), "a");
    await writeFile(join(rootfs, "dir/sub/b"), "b");
    // As in most images; the first test takes them away to see what the runtime leaves.
    for (const p of ["dev", "proc", "sys"]) await mkdir(join(rootfs, p));
  });

  afterEach(async () => {
    expect(await mountsUnder(base)).toEqual([]);
    expect(await listContainers(exName, join(base, "state"))).toEqual([]);
    await rm(base, { recursive: true, force: true });
  });

  async function run(script: string, spec: Partial<ProcessSpec> = {}, signal = new AbortController().signal) {
    const io = captureIO();
    const executor = await makeExecutor(exName, join(base, "state"));
    const r = await runStep({
      rootfs,
      scratch,
      executor,
      spec: { args: ["/bin/sh", "-c", script], env: [PATH_ENV], cwd: "/", uid: 0, gid: 0, network: "none", ...spec },
      io,
      signal,
      snapshotter: createSnapshotter(snapshotter),
    });
    expect(r.snapshotter).toBe(snapshotter);
    return { ...r, out: io.out(), err: io.err() };
  }

  const byPath = (entries: LayerEntry[]) => new Map(entries.map((e) => [e.path, e]));

  test("a new file and the runtime's /dev, /proc, /sys (as BuildKit's runc leaves them) are the entries; no other stubs", async () => {
    for (const p of ["dev", "proc", "sys"]) await rm(join(rootfs, p), { recursive: true });
    const r = await run("echo hi > /f");
    expect(r.exitCode).toBe(0);
    expect(r.entries.map((e) => e.path).sort()).toEqual(["dev", "f", "proc", "sys"]);
    const m = byPath(r.entries);
    expect(m.get("f")).toMatchObject({ type: "file", size: 3, mode: 0o644, uid: 0, gid: 0, source: join(rootfs, "f") });
    for (const p of ["dev", "proc", "sys"]) expect(m.get(p), p).toMatchObject({ type: "directory", mode: 0o755, uid: 0, gid: 0 });
    expect(await readFile(join(rootfs, "f"), "utf8")).toBe("hi\n");
    for (const p of ["dev", "proc", "sys"]) expect(await readdir(join(rootfs, p)), p).toEqual([]);
    for (const stub of ["etc/hosts", "etc/resolv.conf"]) {
      await expect(lstat(join(rootfs, stub)), stub).rejects.toThrow();
    }
    // Once there, a later RUN does not list them again.
    const again = await run("true");
    expect(again.entries).toEqual([]);
  });

  test("modify, chmod and chown", async () => {
    await writeFile(join(rootfs, "g"), "g");
    const r = await run("echo new >> /etc/motd && chmod 4755 /g && echo x > /f && chown 1000:1000 /f");
    expect(r.exitCode).toBe(0);
    const m = byPath(r.entries);
    expect([...m.keys()].sort()).toEqual(["etc", "etc/motd", "f", "g"]);
    expect(m.get("etc/motd")).toMatchObject({ type: "file", size: 8, source: join(rootfs, "etc/motd") });
    expect(await readFile(join(rootfs, "etc/motd"), "utf8")).toBe("old\nnew\n");
    expect(m.get("g")?.mode).toBe(0o4755);
    expect((await lstat(join(rootfs, "g"))).mode & 0o7777).toBe(0o4755);
    expect(m.get("f")).toMatchObject({ uid: 1000, gid: 1000 });
    const st = await lstat(join(rootfs, "f"));
    expect([st.uid, st.gid]).toEqual([1000, 1000]);
  });

  test("deleting a lower file gives a whiteout and removes it from rootfs", async () => {
    const r = await run("rm /etc/motd");
    expect(r.exitCode).toBe(0);
    expect(byPath(r.entries).get("etc/.wh.motd")).toMatchObject({ type: "file", size: 0, mode: 0 });
    await expect(lstat(join(rootfs, "etc/motd"))).rejects.toThrow();
  });

  test("rm -rf and recreate a directory hides all old content with a whiteout per old name (as BuildKit), never an opaque marker", async () => {
    const r = await run("rm -rf /dir && mkdir -p /dir/sub && touch /dir/new /dir/sub/c");
    expect(r.exitCode).toBe(0);
    const paths = r.entries.map((e) => e.path).sort();
    expect(paths).toEqual(["dir", "dir/.wh.a", "dir/new", "dir/sub", "dir/sub/.wh.b", "dir/sub/c"]);
    expect(await readdir(join(rootfs, "dir"))).toEqual(["new", "sub"]);
    expect(await readdir(join(rootfs, "dir/sub"))).toEqual(["c"]);
  });

  test("a directory whose only change is its mtime is not in the layer (BuildKit's differs ignore directory times)", async () => {
    const r = await run("touch /dir && touch /etc/x && rm /etc/x");
    expect(r).toMatchObject({ exitCode: 0, entries: [] });
  });

  test("non-zero exit is returned and leaves rootfs unchanged; output is captured", async () => {
    const r = await run("echo x > /g; rm /etc/motd; echo out; echo err >&2; exit 3");
    expect(r).toMatchObject({ exitCode: 3, entries: [], out: "out\n", err: "err\n" });
    await expect(lstat(join(rootfs, "g"))).rejects.toThrow();
    expect(await readFile(join(rootfs, "etc/motd"), "utf8")).toBe("old\n");
  });

  test("env, cwd, uid and gid apply", async () => {
    const r = await run('echo "$FOO $(pwd) $(id -u):$(id -g)" > out', { env: [PATH_ENV, "FOO=a b"], cwd: "/tmp", uid: 1000, gid: 1000 });
    expect(r.exitCode).toBe(0);
    expect(await readFile(join(rootfs, "tmp/out"), "utf8")).toBe("a b /tmp 1000:1000\n");
    expect(byPath(r.entries).get("tmp/out")).toMatchObject({ uid: 1000, gid: 1000 });
    expect(byPath(r.entries).get("tmp")).toMatchObject({ type: "directory", mode: 0o1777 });
  });

  test("a RUN that changes nothing has no entries", async () => {
    const r = await run("cat /etc/hosts /etc/resolv.conf > /dev/null && ls / > /dev/null");
    expect(r).toMatchObject({ exitCode: 0, entries: [] });
  });

  test("hard links and symlinks", async () => {
    const r = await run("echo x > /h1 && ln /h1 /h2 && ln -s /etc/motd /l");
    expect(r.exitCode).toBe(0);
    const m = byPath(r.entries);
    expect(m.get("h1")).toMatchObject({ type: "file", size: 2 });
    expect(m.get("h2")).toMatchObject({ type: "hardlink", linkname: "h1" });
    expect(m.get("l")).toMatchObject({ type: "symlink", linkname: "/etc/motd" });
    expect((await lstat(join(rootfs, "h2"))).ino).toBe((await lstat(join(rootfs, "h1"))).ino);
  });

  test("abort kills the process quickly and leaves rootfs unchanged", async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 300);
    await expect(run("touch /started; sleep 100", {}, ac.signal)).rejects.toMatchObject({ code: "CANCELLED" });
    expect(Date.now() - t0).toBeLessThan(5000);
    await expect(lstat(join(rootfs, "started"))).rejects.toThrow();
  });
});

describe("runStep auto snapshotter", () => {
  test("uses overlayfs when it can, and falls back to a copy when the scratch path cannot be mounted", async () => {
    const base = await mkdtemp(join(tmpdir(), "tsbuild-auto-"));
    try {
      const rootfs = await makeBusyboxRootfs(join(base, "rootfs"));
      const executor = await makeExecutor("bwrap", join(base, "state"));
      const spec: ProcessSpec = { args: ["/bin/sh", "-c", "echo 1 >> /n"], env: [PATH_ENV], cwd: "/", uid: 0, gid: 0, network: "none" };
      // One snapshotter across RUNs, as one engine has: its overlay probe is remembered between them.
      const common = { rootfs, executor, spec, io: captureIO(), signal: new AbortController().signal, snapshotter: createSnapshotter("auto") };
      await mkdir(join(base, "s1"));
      expect(await runStep({ ...common, scratch: join(base, "s1") })).toMatchObject({ snapshotter: "overlay", exitCode: 0 });
      // overlayfs option syntax cannot carry a comma in a path
      await mkdir(join(base, "s,2"));
      const r = await runStep({ ...common, scratch: join(base, "s,2") });
      expect(r).toMatchObject({ snapshotter: "copy", exitCode: 0 });
      expect(r.entries.map((e) => e.path)).toEqual(["n"]);
      expect(await readFile(join(rootfs, "n"), "utf8")).toBe("1\n1\n");
      // a path problem is not a host problem: the next RUN still gets overlayfs
      expect(await runStep({ ...common, scratch: join(base, "s1") })).toMatchObject({ snapshotter: "overlay" });
      expect(await mountsUnder(base)).toEqual([]);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
