import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { containerPathOf, resolveInRoot } from "../../src/fs/rootfs-path.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "rootfs-path-"));
  await mkdir(path.join(root, "usr/lib"), { recursive: true });
  await writeFile(path.join(root, "usr/lib/libc.so"), "x");
  await symlink("usr/lib", path.join(root, "lib"));
  await symlink("/usr/lib", path.join(root, "abslib"));
  await symlink("../../../../../etc", path.join(root, "usr/escape"));
  await symlink("/etc/passwd", path.join(root, "passwdlink"));
  await symlink("loop2", path.join(root, "loop1"));
  await symlink("loop1", path.join(root, "loop2"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("resolveInRoot", () => {
  it("resolves plain paths lexically, absolute or relative", async () => {
    expect(await resolveInRoot(root, "/usr/lib/libc.so")).toBe(path.join(root, "usr/lib/libc.so"));
    expect(await resolveInRoot(root, "usr//lib/./libc.so")).toBe(path.join(root, "usr/lib/libc.so"));
    expect(await resolveInRoot(root, "/")).toBe(root);
    expect(await resolveInRoot(root, "/does/not/exist")).toBe(path.join(root, "does/not/exist"));
  });

  it("never climbs above the root with ..", async () => {
    expect(await resolveInRoot(root, "/../../etc/passwd")).toBe(path.join(root, "etc/passwd"));
    expect(await resolveInRoot(root, "/usr/../../../x")).toBe(path.join(root, "x"));
  });

  it("resolves relative and absolute symlinks inside the root", async () => {
    expect(await resolveInRoot(root, "/lib/libc.so")).toBe(path.join(root, "usr/lib/libc.so"));
    expect(await resolveInRoot(root, "/abslib/libc.so")).toBe(path.join(root, "usr/lib/libc.so"));
    expect(await resolveInRoot(root, "/usr/escape/shadow")).toBe(path.join(root, "etc/shadow"));
    expect(await resolveInRoot(root, "/passwdlink")).toBe(path.join(root, "etc/passwd"));
  });

  it("can leave the last component unresolved", async () => {
    expect(await resolveInRoot(root, "/lib", { followLast: false })).toBe(path.join(root, "lib"));
    expect(await resolveInRoot(root, "/lib/x/..", { followLast: false })).toBe(path.join(root, "usr/lib"));
    expect(await resolveInRoot(root, "/lib")).toBe(path.join(root, "usr/lib"));
  });

  it("reports symlink loops", async () => {
    await expect(resolveInRoot(root, "/loop1/x")).rejects.toMatchObject({ code: "SYMLINK_LOOP" });
  });

  it("maps host paths back to container paths", () => {
    expect(containerPathOf(root, path.join(root, "usr/lib"))).toBe("/usr/lib");
    expect(containerPathOf(root, root)).toBe("/");
    expect(() => containerPathOf(root, "/elsewhere")).toThrow();
  });
});
