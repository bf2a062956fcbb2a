import { cp, mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lookupUser } from "../../src/executor/user-lookup.js";

const fixture = fileURLToPath(new URL("../../fixtures/copy/etc", import.meta.url));
let rootfs: string;
let empty: string;
beforeAll(async () => {
  rootfs = await mkdtemp(path.join(os.tmpdir(), "user-lookup-"));
  await cp(fixture, path.join(rootfs, "etc"), { recursive: true });
  empty = await mkdtemp(path.join(os.tmpdir(), "user-lookup-empty-"));
  await mkdir(path.join(empty, "etc"));
});
afterAll(async () => {
  await rm(rootfs, { recursive: true, force: true });
  await rm(empty, { recursive: true, force: true });
});

describe("lookupUser", () => {
  it("resolves names from /etc/passwd with their primary group and home", async () => {
    expect(await lookupUser(rootfs, "app")).toEqual({ uid: 1000, gid: 1001, home: "/home/app", additionalGids: [1001, 50] });
    expect(await lookupUser(rootfs, "root")).toEqual({ uid: 0, gid: 0, home: "/root" });
  });

  it("resolves name:group, uid:gid, name:gid and uid:group", async () => {
    expect(await lookupUser(rootfs, "app:staff")).toEqual({ uid: 1000, gid: 50, home: "/home/app" });
    expect(await lookupUser(rootfs, "10:20")).toEqual({ uid: 10, gid: 20 });
    expect(await lookupUser(rootfs, "app:7")).toEqual({ uid: 1000, gid: 7, home: "/home/app" });
    expect(await lookupUser(rootfs, "1234:appgrp")).toEqual({ uid: 1234, gid: 1001 });
  });

  it("gives a bare numeric uid gid 0 (USER) or the same gid (COPY --chown)", async () => {
    expect(await lookupUser(rootfs, "4242")).toEqual({ uid: 4242, gid: 0 });
    expect(await lookupUser(rootfs, "1000")).toEqual({ uid: 1000, gid: 1001, home: "/home/app", additionalGids: [1001, 50] });
    expect(await lookupUser(rootfs, "4242", { numericGidDefault: "same" })).toEqual({ uid: 4242, gid: 4242 });
    expect(await lookupUser(empty, "1000", { numericGidDefault: "same" })).toEqual({ uid: 1000, gid: 1000 });
    expect(await lookupUser(empty, "5")).toEqual({ uid: 5, gid: 0 });
  });

  it("gives supplementary groups from /etc/group only when the spec names no group (runc's rule)", async () => {
    expect((await lookupUser(rootfs, "nohome")).additionalGids).toEqual([50]);
    expect((await lookupUser(rootfs, "app:staff")).additionalGids).toBeUndefined();
    expect((await lookupUser(rootfs, "1000:50")).additionalGids).toBeUndefined();
    expect((await lookupUser(rootfs, "4242")).additionalGids).toBeUndefined();
    expect((await lookupUser(empty, "1000")).additionalGids).toBeUndefined();
  });

  it("fails clearly for unknown users and groups", async () => {
    await expect(lookupUser(rootfs, "nobody")).rejects.toMatchObject({ code: "UNKNOWN_USER", message: expect.stringMatching(/nobody.*\/etc\/passwd/) });
    await expect(lookupUser(empty, "app")).rejects.toMatchObject({ code: "UNKNOWN_USER", message: expect.stringContaining("/etc/passwd") });
    await expect(lookupUser(rootfs, "app:wheel")).rejects.toMatchObject({ code: "UNKNOWN_GROUP", message: expect.stringMatching(/wheel.*\/etc\/group/) });
  });

  it("lenient (BuildKit's COPY --chown and WORKDIR): an unknown user is 0:0, an unknown group keeps the user part's gid", async () => {
    const lenient = { numericGidDefault: "same", lenient: true } as const;
    expect(await lookupUser(rootfs, "nobody", lenient)).toEqual({ uid: 0, gid: 0 });
    expect(await lookupUser(empty, "app", lenient)).toEqual({ uid: 0, gid: 0 });
    expect(await lookupUser(rootfs, "nobody:staff", lenient)).toEqual({ uid: 0, gid: 50 });
    expect(await lookupUser(rootfs, "nobody:9", lenient)).toEqual({ uid: 0, gid: 9 });
    expect(await lookupUser(rootfs, "app:wheel", lenient)).toMatchObject({ uid: 1000, gid: 1001 });
    expect(await lookupUser(rootfs, "4242:wheel", lenient)).toEqual({ uid: 4242, gid: 4242 });
    expect(await lookupUser(empty, "4242:wheel", lenient)).toEqual({ uid: 4242, gid: 4242 });
    // Malformed specs are still errors.
    await expect(lookupUser(rootfs, "app:", lenient)).rejects.toMatchObject({ code: "BAD_USER" });
  });

  it("reads the database through rootfs symlinks without leaving the root", async () => {
    const linked = await mkdtemp(path.join(os.tmpdir(), "user-lookup-link-"));
    try {
      await cp(fixture, path.join(linked, "real-etc"), { recursive: true });
      await symlink("/real-etc", path.join(linked, "etc"));
      expect(await lookupUser(linked, "app")).toMatchObject({ uid: 1000, gid: 1001 });
    } finally {
      await rm(linked, { recursive: true, force: true });
    }
  });
});
