// A CI script written for docker (fixtures/docker-script/ci.sh) runs unchanged with `docker` being tsbuild:
// buildx build with labels, iidfile, network none, add-host and a tar output, then image ls/inspect --format, run,
// tag and rmi.
import { execFile } from "node:child_process";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, REPO, tempDir, tsbuild } from "../helpers/cli.js";
import { storeWithBusybox } from "../helpers/busybox-image.js";

const run = promisify(execFile);
let dir: Awaited<ReturnType<typeof tempDir>>;
let root: string;

beforeAll(async () => {
  dir = await tempDir("docker-script-");
  root = join(dir.path, "store");
  await storeWithBusybox(root);
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("a docker CI script with tsbuild as docker", () => {
  it("runs unchanged and does what it did with docker", async () => {
    const bin = join(dir.path, "bin");
    const out = join(dir.path, "out");
    await mkdir(bin);
    await mkdir(out);
    await writeFile(join(bin, "docker"), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    await chmod(join(bin, "docker"), 0o755);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}`, OUT: out, TSBUILD_ROOT: root };
    const r = await run("sh", [join(REPO, "fixtures/docker-script/ci.sh")], { env, maxBuffer: 16 << 20 }).catch((e: { stdout: string; stderr: string }) => {
      throw new Error(`ci.sh failed:\n${e.stderr}`);
    });
    expect(r.stderr).not.toMatch(/this is a bug/);

    const ids = await tsbuild(["images", "--root", root, "-q", "--no-trunc", "ci/app"]);
    const id = (await readFile(join(out, "iid"), "utf8")).trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(ids.stdout.trim()).toBe(id);
    expect((await readFile(join(out, "images"), "utf8")).split("\n").filter(Boolean).sort()).toEqual(["ci/app:1.2.3", "ci/app:latest"]);
    expect(await readFile(join(out, "version"), "utf8")).toBe("1.2.3\n");
    expect(await readFile(join(out, "run"), "utf8")).toBe("app 1.2.3\nhi from 1.2.3\n");
    // After `rmi ci/app:latest` the image keeps its other names: one id.
    expect((await readFile(join(out, "ids"), "utf8")).trim().split("\n")).toEqual([id.slice(7, 19)]);

    const listing = await run("tar", ["-tf", join(out, "rootfs.tar")]);
    expect(listing.stdout.split("\n")).toContain("version");
    const hosts = await run("tar", ["-xOf", join(out, "rootfs.tar"), "etc/hosts"]).catch(() => ({ stdout: "" }));
    expect(hosts.stdout).not.toContain("db.internal");
    const version = await run("tar", ["-xOf", join(out, "rootfs.tar"), "version"]);
    expect(version.stdout).toBe("1.2.3\n");
  });
});
