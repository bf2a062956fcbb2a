import { execFile } from "node:child_process";
import { chmod, lstat, lutimes, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { LayerEntry } from "../../src/layer/types.js";
import { applyChanges, diffTrees, dropMountStubs, normalizeMountPoints, type Change } from "../../src/snapshot/diff.js";
import { mountsUnder } from "../../src/snapshot/mounts.js";
import { mountOverlayDirs, overlayChanges, prepareOverlayDirs } from "../../src/snapshot/overlay.js";
import { EXECUTOR_MOUNT_STUBS, RUNTIME_MOUNT_POINTS } from "../../src/executor/hosts.js";

const cp = promisify(execFile);

let base: string;
let lower: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "tsbuild-diff-"));
  lower = join(base, "lower");
  await mkdir(join(lower, "d/x"), { recursive: true });
  await mkdir(join(lower, "etc"));
  await writeFile(join(lower, "d/x/old"), "old");
  await writeFile(join(lower, "d/keep"), "keep");
  await writeFile(join(lower, "f"), "f");
  await mkdir(join(lower, "becomes-file"));
  await writeFile(join(lower, "becomes-dir"), "");
});
afterEach(async () => {
  expect(await mountsUnder(base)).toEqual([]);
  await rm(base, { recursive: true, force: true });
});

/** The same host-side edit through both snapshotters: the overlay's merged dir and a cp -a copy. */
async function viaOverlay(edit: (root: string) => Promise<void>): Promise<Change[]> {
  const d = await prepareOverlayDirs(lower, join(base, "scratch"));
  const release = await mountOverlayDirs(d);
  try {
    await edit(d.merged);
    return await overlayChanges(d);
  } finally {
    await release();
  }
}
async function viaCopy(edit: (root: string) => Promise<void>): Promise<Change[]> {
  const copy = join(base, "copy");
  await cp("cp", ["-a", lower, copy]);
  await edit(copy);
  return diffTrees(lower, copy);
}

const summary = (entries: LayerEntry[]) => entries.map((e) => `${e.path}:${e.type}`).sort();

describe.each([
  ["overlay", viaOverlay],
  ["copy", viaCopy],
] as const)("%s changes applied", (_name, via) => {
  test("nested directory recreated inside a recreated directory loses all old content", async () => {
    const changes = await via(async (root) => {
      await rm(join(root, "d"), { recursive: true });
      await mkdir(join(root, "d/x"), { recursive: true });
      await writeFile(join(root, "d/x/new"), "new");
    });
    const entries = await applyChanges(lower, changes);
    expect(await readdir(join(lower, "d"))).toEqual(["x"]);
    expect(await readdir(join(lower, "d/x"))).toEqual(["new"]);
    const paths = entries.map((e) => e.path);
    expect(paths).toContain("d/x/new");
    // Either an opaque marker or explicit whiteouts must hide d/keep.
    expect(paths.some((p) => p === "d/.wh..wh..opq" || p === "d/.wh.keep")).toBe(true);
  });

  test("type changes: dir → file and file → dir", async () => {
    const changes = await via(async (root) => {
      await rm(join(root, "becomes-file"), { recursive: true });
      await writeFile(join(root, "becomes-file"), "now a file");
      await rm(join(root, "becomes-dir"));
      await mkdir(join(root, "becomes-dir"));
      await symlink("../f", join(root, "becomes-dir/link"));
    });
    const entries = await applyChanges(lower, changes);
    expect(summary(entries)).toEqual(expect.arrayContaining(["becomes-file:file", "becomes-dir:directory", "becomes-dir/link:symlink"]));
    expect(await readFile(join(lower, "becomes-file"), "utf8")).toBe("now a file");
    expect((await lstat(join(lower, "becomes-dir/link"))).isSymbolicLink()).toBe(true);
  });

  test("directory metadata is carried and restored after children; epoch clamps entry mtimes", async () => {
    const changes = await via(async (root) => {
      await writeFile(join(root, "d/new"), "n");
      await chmod(join(root, "d"), 0o750);
      await lutimes(join(root, "d"), new Date(2_000_000_000_000), new Date(2_000_000_000_000));
    });
    const entries = await applyChanges(lower, changes, { epoch: 1_000_000 });
    const d = entries.find((e) => e.path === "d");
    expect(d).toMatchObject({ type: "directory", mode: 0o750, mtime: 1_000_000 });
    const st = await lstat(join(lower, "d"));
    expect(st.mode & 0o7777).toBe(0o750);
    expect(Math.floor(st.mtimeMs / 1000)).toBe(2_000_000_000);
  });

  test("network-file stubs and the parent they touched are dropped; /proc is kept", async () => {
    const changes = await via(async (root) => {
      await writeFile(join(root, "etc/hosts"), "");
      await mkdir(join(root, "proc"));
      await writeFile(join(root, "real"), "r");
    });
    const kept = await dropMountStubs(changes, lower, EXECUTOR_MOUNT_STUBS);
    expect(kept.map((c) => c.path)).toEqual(["proc", "real"]);
  });

  test("a RUN --mount target and its new parents are dropped when left empty", async () => {
    const changes = await via(async (root) => {
      await mkdir(join(root, "mnt/x/y"), { recursive: true });
      await mkdir(join(root, "d/m"));
    });
    const kept = await dropMountStubs(changes, lower, [...EXECUTOR_MOUNT_STUBS, "mnt", "mnt/x", "mnt/x/y", "d", "d/m"]);
    expect(kept.map((c) => c.path)).toEqual([]);
  });

  test("a stub path the RUN filled with content is kept", async () => {
    const changes = await via(async (root) => {
      await mkdir(join(root, "etc/hosts"));
      await writeFile(join(root, "etc/hosts/data"), "x");
    });
    const kept = await dropMountStubs(changes, lower, EXECUTOR_MOUNT_STUBS);
    expect(kept.map((c) => c.path)).toEqual(["etc", "etc/hosts", "etc/hosts/data"]);
  });

  test("the runtime's new /dev, /proc, /sys become 0755 root as runc makes them, keeping their mtime", async () => {
    await mkdir(join(lower, "sys"), { mode: 0o700 });
    const changes = await via(async (root) => {
      await mkdir(join(root, "dev"), { mode: 0o1755 });
      await chmod(join(root, "dev"), 0o1755);
      await lutimes(join(root, "dev"), new Date(1_500_000_000_000), new Date(1_500_000_000_000));
      await mkdir(join(root, "proc"));
      await writeFile(join(root, "proc/data"), "x");
      await chmod(join(root, "proc"), 0o700);
      await chmod(join(root, "sys"), 0o750);
    });
    const entries = await applyChanges(lower, await normalizeMountPoints(changes, lower, RUNTIME_MOUNT_POINTS));
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect(byPath.get("dev")).toMatchObject({ type: "directory", mode: 0o755, uid: 0, gid: 0, mtime: 1_500_000_000 });
    // Not the runtime's: one with content, and one the image already had.
    expect(byPath.get("proc")?.mode).toBe(0o700);
    expect(byPath.get("sys")?.mode).toBe(0o750);
    expect((await lstat(join(lower, "dev"))).mode & 0o7777).toBe(0o755);
  });
});

test("unchanged copy has no changes", async () => {
  expect(await viaCopy(async () => undefined)).toEqual([]);
});
