// --output type=local: device nodes of the image are never recreated on the host (a 0666 block node 7,0 would open
// the host's loop device to every local user), modes are kept exactly, and a symlink already in dest is never followed.
import { lstat, mkdir, readdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { extendArchive, layerTar } from "../helpers/image-archive.js";
import { writeFile } from "node:fs/promises";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let project: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

beforeAll(async () => {
  dir = await tempDir("tsbuild-local-");
  root = join(dir.path, "store");
  // Device nodes exist only in the layer tar: the test never creates or opens a host device itself.
  const layer = await layerTar([
    { name: "dev/", type: "directory", mode: 0o755 },
    { name: "dev/loop0", type: "block-device", mode: 0o666, devmajor: 7, devminor: 0 },
    { name: "dev/mem", type: "character-device", mode: 0o666, devmajor: 1, devminor: 1 },
    { name: "dev/pipe", type: "fifo", mode: 0o640 },
    { name: "secret", mode: 0o000, content: "s\n" },
    { name: "suid", mode: 0o4755, content: "x\n" },
    { name: "etc/", type: "directory", mode: 0o755 },
    { name: "etc/app.conf", mode: 0o600, content: "conf\n" },
    // No "opt/" entry: extraction creates the parent itself, so a symlink there in dest is met on the way.
    { name: "opt/tool", mode: 0o755, content: "tool\n" },
  ]);
  const archive = join(dir.path, "devs.tar");
  await extendArchive(await makeBusyboxArchive(), archive, [layer], "devs:base");
  const loaded = await r(["load", "-i", archive]);
  expect(loaded.code, loaded.stderr).toBe(0);
  project = join(dir.path, "proj");
  await mkdir(project);
  await writeFile(join(project, "Dockerfile"), "FROM devs:base\n");
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("--output type=local", () => {
  it("skips device nodes with a warning, keeps fifos and modes exactly, and can export into the same dir again", async () => {
    const dest = join(dir.path, "out");
    for (let i = 0; i < 2; i++) {
      const res = await r(["build", "--progress", "plain", "--output", `type=local,dest=${dest}`, project]);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toMatch(/skipped 2 device nodes \(\/dev\/loop0, \/dev\/mem\)/);
    }
    expect((await readdir(join(dest, "dev"))).sort()).toEqual(["pipe"]);
    const pipe = await lstat(join(dest, "dev/pipe"));
    expect(pipe.isFIFO()).toBe(true);
    expect(pipe.mode & 0o7777).toBe(0o640);
    expect((await lstat(join(dest, "secret"))).mode & 0o7777).toBe(0o000);
    expect((await lstat(join(dest, "suid"))).mode & 0o7777).toBe(0o4755);
    expect((await lstat(join(dest, "etc/app.conf"))).mode & 0o7777).toBe(0o600);
    expect((await lstat(join(dest, "bin/sh"))).isSymbolicLink()).toBe(true);
  });

  it("replaces a symlink in dest that the image has as a directory (etc -> a host directory)", async () => {
    const dest = join(dir.path, "trap1");
    const host = join(dir.path, "host-etc");
    await mkdir(dest);
    await mkdir(host);
    await symlink(host, join(dest, "etc"));
    const res = await r(["build", "--progress", "plain", "--output", `type=local,dest=${dest}`, project]);
    expect(res.code, res.stderr).toBe(0);
    expect((await lstat(join(dest, "etc"))).isDirectory()).toBe(true);
    expect((await readdir(join(dest, "etc"))).sort()).toContain("app.conf");
    expect(await readdir(host)).toEqual([]);
  });

  it("refuses to write through a symlink in dest it would otherwise follow (opt -> a host directory)", async () => {
    const dest = join(dir.path, "trap2");
    const host = join(dir.path, "host-opt");
    await mkdir(dest);
    await mkdir(host);
    await symlink(host, join(dest, "opt"));
    const res = await r(["build", "--progress", "plain", "--output", `type=local,dest=${dest}`, project]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/opt is a symlink that was already in the destination/);
    expect(await readdir(host)).toEqual([]);
  });
});
