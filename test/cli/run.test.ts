// RUN end to end: real runtimes and overlayfs, results checked by unpacking the exported image with umoci.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile, stat, lstat, writeFile, mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { tsbuild, tempDir } from "../helpers/cli.js";
import { exec } from "../helpers/tools.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

interface Config {
  config: Record<string, unknown>;
  rootfs: { diff_ids: string[] };
  history: { created_by: string; empty_layer?: boolean }[];
}

async function buildAndUnpack(dockerfile: string, extra: string[] = []): Promise<{ rootfs: string; stderr: string; config: Config }> {
  const p = join(dir.path, `proj-${Math.random().toString(36).slice(2)}`);
  await mkdir(p, { recursive: true });
  await writeFile(join(p, "Dockerfile"), dockerfile);
  const layout = join(p, "oci");
  const res = await r(["build", "--progress", "plain", "-t", "run:test", "--output", `type=oci,dest=${layout},tar=false`, ...extra, p]);
  expect(res.code, res.stderr).toBe(0);
  const bundle = join(p, "bundle");
  await exec("umoci", ["unpack", "--image", `${layout}:test`, bundle]);
  const info = JSON.parse((await r(["inspect", "run:test"])).stdout)[0];
  return { rootfs: join(bundle, "rootfs"), stderr: res.stderr, config: info.Config };
}

/** Every path below dir, directories with a trailing slash. */
async function treeOf(dirPath: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dirPath, rel), { withFileTypes: true })) {
    const p = rel + e.name;
    if (e.isDirectory()) out.push(p + "/", ...(await treeOf(dirPath, p + "/")));
    else out.push(p);
  }
  return out.sort();
}

async function leftoverMounts(): Promise<string[]> {
  return (await readFile("/proc/mounts", "utf8")).split("\n").filter((l) => l.includes(dir.path));
}

beforeAll(async () => {
  dir = await tempDir();
  root = join(dir.path, "store");
  const loaded = await r(["load", "-i", await makeBusyboxArchive(dir.path)]);
  expect(loaded.code, loaded.stderr).toBe(0);
});
afterAll(async () => {
  await dir?.cleanup();
});

const DOCKERFILE = [
  "FROM busybox:local",
  "RUN mkdir -p /data/sub && echo one > /data/a && echo two > /data/sub/b && echo gone > /data/c && mkdir /olddir && touch /olddir/x",
  "RUN echo changed > /data/a && chmod 0600 /data/sub/b && chown 1000:1000 /data/sub && rm /data/c && rm -rf /olddir",
  "ENV GREETING=hi",
  "WORKDIR /work",
  "USER app",
  'RUN id -u > /tmp/uid && echo "$GREETING" > /tmp/env && pwd > /tmp/pwd',
  "USER root",
  "RUN --network=none grep -c : /proc/net/dev > /netdev-none",
  "RUN <<EOF",
  "echo from heredoc > /heredoc",
  "EOF",
  "RUN true",
  "",
].join("\n");

describe("RUN --mount", () => {
  it("a secret is readable during RUN and absent from every blob in the store", async () => {
    const secretFile = join(dir.path, "token.txt");
    const secret = "s3cr3t-" + Math.random().toString(36).slice(2);
    await writeFile(secretFile, secret);
    const { rootfs } = await buildAndUnpack("FROM busybox:local\nRUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -c1-64 > /secret-sum\n", [
      "--secret",
      `id=tok,src=${secretFile}`,
    ]);
    expect((await readFile(join(rootfs, "secret-sum"), "utf8")).trim()).toBe(createHash("sha256").update(secret).digest("hex"));
    await expect(lstat(join(rootfs, "run/secrets/tok"))).rejects.toThrow();
    const blobs = join(root, "blobs/sha256");
    for (const b of await readdir(blobs)) {
      const data = await readFile(join(blobs, b));
      expect(data.includes(secret), `secret found in blob ${b}`).toBe(false);
    }
  });

  it("a cache mount keeps its contents across builds and never enters a layer", async () => {
    const df = "FROM busybox:local\nRUN --mount=type=cache,target=/cache,id=counter sh -c 'echo x >> /cache/log; wc -l < /cache/log > /count'\n";
    const first = await buildAndUnpack(df);
    const second = await buildAndUnpack(df, ["--no-cache"]);
    const a = Number(await readFile(join(first.rootfs, "count"), "utf8"));
    const b = Number(await readFile(join(second.rootfs, "count"), "utf8"));
    expect(b).toBe(a + 1);
    await expect(lstat(join(second.rootfs, "cache/log"))).rejects.toThrow();
  });

  it("a bind mount from another stage is readable and read-only", async () => {
    const { rootfs } = await buildAndUnpack(
      "FROM busybox:local AS src\nRUN echo from-stage > /payload\nFROM busybox:local\nRUN --mount=type=bind,from=src,target=/mnt cat /mnt/payload > /got && ! touch /mnt/new 2>/dev/null\n",
    );
    expect(await readFile(join(rootfs, "got"), "utf8")).toBe("from-stage\n");
    await expect(lstat(join(rootfs, "mnt/payload"))).rejects.toThrow();
  });

  it("a bind mount from an image reference (no such stage) reads that image read-only, and its key follows the image", async () => {
    const src = join(dir.path, "mount-src");
    await mkdir(src, { recursive: true });
    const makeSource = async (word: string) => {
      await writeFile(join(src, "Dockerfile"), `FROM busybox:local\nRUN echo ${word} > /payload\n`);
      const res = await r(["build", "-q", "-t", "mount-src/img:1", src]);
      expect(res.code, res.stderr).toBe(0);
    };
    await makeSource("one");
    const dockerfile = "FROM busybox:local\nRUN --mount=type=bind,from=mount-src/img:1,target=/mnt cat /mnt/payload > /got && ! touch /mnt/new 2>/dev/null\n";
    const first = await buildAndUnpack(dockerfile);
    expect(await readFile(join(first.rootfs, "got"), "utf8")).toBe("one\n");
    expect((await buildAndUnpack(dockerfile)).stderr).toMatch(/CACHED/);
    // Another image under that name is another mount source: the step runs again.
    await makeSource("two");
    const changed = await buildAndUnpack(dockerfile);
    expect(changed.stderr).not.toMatch(/CACHED/);
    expect(await readFile(join(changed.rootfs, "got"), "utf8")).toBe("two\n");
  });
});

describe("RUN", () => {
  for (const [executor, snapshotter] of [
    ["auto", "auto"],
    ["runc", "overlay"],
    ["crun", "copy"],
    ["bwrap", "overlay"],
  ] as const) {
    it(`creates, modifies, chmods, chowns and deletes files (${executor}, ${snapshotter})`, async () => {
      const { rootfs, config, stderr } = await buildAndUnpack(DOCKERFILE, ["--executor", executor, "--snapshotter", snapshotter]);
      expect(await readFile(join(rootfs, "data/a"), "utf8")).toBe("changed\n");
      expect((await stat(join(rootfs, "data/sub/b"))).mode & 0o777).toBe(0o600);
      const sub = await stat(join(rootfs, "data/sub"));
      expect([sub.uid, sub.gid]).toEqual([1000, 1000]);
      await expect(lstat(join(rootfs, "data/c"))).rejects.toThrow();
      await expect(lstat(join(rootfs, "olddir"))).rejects.toThrow();
      expect(await readFile(join(rootfs, "tmp/uid"), "utf8")).toBe("1000\n");
      expect(await readFile(join(rootfs, "tmp/env"), "utf8")).toBe("hi\n");
      expect(await readFile(join(rootfs, "tmp/pwd"), "utf8")).toBe("/work\n");
      expect(Number(await readFile(join(rootfs, "netdev-none"), "utf8"))).toBe(1); // only lo
      expect(await readFile(join(rootfs, "heredoc"), "utf8")).toBe("from heredoc\n");
      // What the runtime provides (/proc's content, /etc/hosts) never lands in a layer; its /dev, /proc, /sys mount
      // points do, empty, as in BuildKit's images.
      expect(await readdir(join(rootfs, "proc")).catch(() => [])).toEqual([]);
      await expect(lstat(join(rootfs, "etc/hosts"))).rejects.toThrow();
      expect(config.rootfs.diff_ids.length).toBeGreaterThan(1);
      // Exactly the base's tree plus what the Dockerfile created (nothing leaked, nothing lost).
      const base = await buildAndUnpack("FROM busybox:local\n");
      const added = ["data/", "data/a", "data/sub/", "data/sub/b", "work/", "tmp/uid", "tmp/env", "tmp/pwd", "netdev-none", "heredoc", "dev/", "proc/", "sys/"];
      expect(await treeOf(rootfs)).toEqual([...(await treeOf(base.rootfs)), ...added].sort());
      expect(stderr).toMatch(/RUN true/);
      expect(await leftoverMounts()).toEqual([]);
    });
  }

  it("RUN works on a base image of 120 layers (beyond overlayfs' lowerdir limits)", async () => {
    const p = join(dir.path, "deep");
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "Dockerfile"), ["FROM busybox:local", ...Array.from({ length: 120 }, (_, i) => `WORKDIR /deep/d${i}`)].join("\n") + "\n");
    const base = await r(["build", "-q", "-t", "deep:base", p]);
    expect(base.code, base.stderr).toBe(0);
    const { rootfs, config } = await buildAndUnpack("FROM deep:base\nRUN ls /deep | wc -l > /count\n");
    expect(Number(await readFile(join(rootfs, "count"), "utf8"))).toBe(120);
    expect(config.rootfs.diff_ids.length).toBeGreaterThan(120);
  });

  it("SHELL changes how shell-form RUN runs; a heredoc with a shebang runs as a script", async () => {
    const { rootfs } = await buildAndUnpack(
      [
        "FROM busybox:local",
        'SHELL ["/bin/busybox", "sh", "-c"]',
        'RUN echo "$0" > /shell-name',
        "RUN <<EOF",
        "#!/usr/bin/awk -f",
        'BEGIN { print \"from awk\" > \"/awk-out\" }',
        "EOF",
        "",
      ].join("\n"),
    );
    expect(await readFile(join(rootfs, "shell-name"), "utf8")).toBe("sh\n");
    expect(await readFile(join(rootfs, "awk-out"), "utf8")).toBe("from awk\n");
  });

  it("files RUN writes keep their real mtimes unless SOURCE_DATE_EPOCH is set", async () => {
    const before = Math.floor(Date.now() / 1000) - 5;
    const { rootfs } = await buildAndUnpack("FROM busybox:local\nRUN echo x > /stamp\n");
    expect((await stat(join(rootfs, "stamp"))).mtimeMs / 1000).toBeGreaterThan(before);
  });

  it("a RUN that changes nothing adds an empty layer, as BuildKit does", async () => {
    // The first RUN on this base leaves the runtime's /dev, /proc, /sys mount points; the second changes nothing.
    const a = await buildAndUnpack("FROM busybox:local\nRUN true\nRUN true\n");
    const last = a.config.history[a.config.history.length - 1];
    expect(last?.created_by).toBe("RUN /bin/sh -c true # buildkit");
    expect(last?.empty_layer).toBeUndefined();
    // The diff id of a tar with no entries (two zero blocks).
    expect(a.config.rootfs.diff_ids.at(-1)).toBe("sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef");
  });

  it("streams output and reports a failure with exit code, output and line; leaves nothing behind", async () => {
    const p = join(dir.path, "fail");
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "Dockerfile"), "FROM busybox:local\nRUN echo visible-output && echo on-stderr >&2 && exit 7\n");
    const res = await r(["build", "--progress", "plain", p]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^#\d+ \d+\.\d{3} visible-output$/m);
    expect(res.stderr).toMatch(/Dockerfile:2:1: process "\/bin\/sh -c echo visible-output.*" did not complete successfully: exit code: 7/);
    expect(res.stderr).toMatch(/on-stderr/);
    expect(await leftoverMounts()).toEqual([]);
    const tmp = await readdir(join(root, "tmp")).catch(() => []);
    expect(tmp.filter((n) => n.startsWith("build-"))).toEqual([]);
  });
});
