// openOutputFile/writeOutputFile against what can be at an output path: nothing, a regular file, a symlink (to a
// file, dangling), a FIFO, a char device made with mknod, a directory, a full tmpfs. Never the machine's /dev/null.
import { spawn } from "node:child_process";
import { chmod, lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EnvironmentError, UsageError } from "../../src/errors.js";
import { checkOutputDir, checkOutputFile, openOutputFile, writeOutputFile } from "../../src/store/output-file.js";
import { tempDir } from "../helpers/cli.js";
import { exec } from "../helpers/tools.js";

let dir: { path: string; cleanup(): Promise<void> };

beforeAll(async () => {
  dir = await tempDir("tsbuild-outfile-");
});
afterAll(async () => {
  await dir.cleanup();
});

/** Read a FIFO with cat in another process (the writer blocks in open until there is a reader). */
function readFifo(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn("cat", [path]);
    const out: Buffer[] = [];
    c.stdout.on("data", (b: Buffer) => out.push(b));
    c.on("error", reject);
    c.on("close", () => resolve(Buffer.concat(out).toString()));
  });
}

const leftovers = async (d: string) => (await readdir(d)).filter((n) => n.includes(".tmp-"));

describe("openOutputFile", () => {
  it("creates a new file with mode 0644 (or the given mode), parents included", async () => {
    const f = join(dir.path, "new/sub/a.json");
    await writeOutputFile(f, "one\n");
    expect(await readFile(f, "utf8")).toBe("one\n");
    expect((await stat(f)).mode & 0o777).toBe(0o644 & ~process.umask());
    const g = join(dir.path, "secret.json");
    await writeOutputFile(g, "x", { mode: 0o600 });
    expect((await stat(g)).mode & 0o777).toBe(0o600);
  });

  it("replaces a regular file atomically and keeps its mode", async () => {
    const f = join(dir.path, "keep-mode.tar");
    await writeFile(f, "old");
    await chmod(f, 0o640);
    await writeOutputFile(f, "new content");
    expect(await readFile(f, "utf8")).toBe("new content");
    expect((await stat(f)).mode & 0o777).toBe(0o640);
    expect(await leftovers(dir.path)).toEqual([]);
  });

  it("abort leaves the old file as it was and no temp file", async () => {
    const f = join(dir.path, "aborted.tar");
    await writeFile(f, "old");
    const o = await openOutputFile(f);
    o.stream.write("partial");
    await o.abort();
    expect(await readFile(f, "utf8")).toBe("old");
    expect(await leftovers(dir.path)).toEqual([]);
  });

  it("writes through a symlink to a regular file: the link stays, the file it names is replaced", async () => {
    const real = join(dir.path, "real.tar");
    const link = join(dir.path, "link.tar");
    await writeFile(real, "old");
    await chmod(real, 0o600);
    await symlink("real.tar", link);
    await writeOutputFile(link, "via link");
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readlink(link)).toBe("real.tar");
    expect(await readFile(real, "utf8")).toBe("via link");
    expect((await stat(real)).mode & 0o777).toBe(0o600);
  });

  it("a dangling symlink: creates the file it names and keeps the link", async () => {
    const link = join(dir.path, "dangling");
    await symlink("made-by-link.tar", link);
    await writeOutputFile(link, "created");
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readFile(join(dir.path, "made-by-link.tar"), "utf8")).toBe("created");
  });

  it("writes through a FIFO (a reader gets the bytes; the FIFO stays a FIFO)", async () => {
    const fifo = join(dir.path, "pipe");
    await exec("mkfifo", [fifo]);
    const reading = readFifo(fifo);
    await writeOutputFile(fifo, "through the pipe\n");
    expect(await reading).toBe("through the pipe\n");
    expect((await lstat(fifo)).isFIFO()).toBe(true);
  });

  it("writes through a char device of its own (mknod c 1 3): it stays a char device", async () => {
    const dev = join(dir.path, "null");
    await exec("mknod", [dev, "c", "1", "3"]);
    await writeOutputFile(dev, "discarded");
    const st = await lstat(dev);
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe((await stat("/dev/null")).rdev);
    // A regular file put in its place would hold the bytes; the device reads empty.
    expect(await readFile(dev, "utf8")).toBe("");
    expect(await leftovers(dir.path)).toEqual([]);
  });

  it("a symlink to a char device is written through too", async () => {
    const dev = join(dir.path, "null2");
    await exec("mknod", [dev, "c", "1", "3"]);
    const link = join(dir.path, "to-null");
    await symlink(dev, link);
    await writeOutputFile(link, "discarded");
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect((await lstat(dev)).isCharacterDevice()).toBe(true);
  });

  it("a directory, a file as parent, a too-long name: UsageErrors naming the path", async () => {
    const d = join(dir.path, "a-dir");
    await mkdir(d);
    const file = join(dir.path, "plain");
    await writeFile(file, "x");
    const cases: [string, string][] = [
      [d, "PATH_IS_DIRECTORY"],
      [join(file, "below.tar"), "PATH_NOT_DIRECTORY"],
      [join(dir.path, "n".repeat(300)), "PATH_TOO_LONG"],
    ];
    for (const [p, code] of cases) {
      for (const attempt of [() => writeOutputFile(p, "x", { what: "--flag" }), () => checkOutputFile(p, { what: "--flag" })]) {
        const e = await attempt().then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(e, p).toBeInstanceOf(UsageError);
        expect((e as UsageError).code).toBe(code);
        expect((e as Error).message).toContain(`--flag ${p}`);
      }
    }
    await expect(checkOutputDir(file, { what: "--out" })).rejects.toMatchObject({ code: "PATH_NOT_DIRECTORY" });
    await expect(checkOutputDir(join(dir.path, "fresh/dir"))).resolves.toBeUndefined();
  });

  it("disk full (a 64k tmpfs): EnvironmentError DISK_FULL naming the file, old file kept, no temp left", async () => {
    const mnt = join(dir.path, "tiny");
    await mkdir(mnt);
    await exec("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt]);
    try {
      const f = join(mnt, "big.tar");
      await writeFile(f, "old");
      const e = await writeOutputFile(f, Buffer.alloc(512 * 1024, 1), { what: "save -o" }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(EnvironmentError);
      expect((e as EnvironmentError).code).toBe("DISK_FULL");
      expect((e as Error).message).toBe(`save -o ${f}: no space left on the device`);
      expect(await readFile(f, "utf8")).toBe("old");
      expect(await leftovers(mnt)).toEqual([]);
    } finally {
      await exec("umount", [mnt]);
    }
  });
});
