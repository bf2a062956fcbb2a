// `tsbuild build -`: a tar context (plain, gzip, bzip2, xz) or a bare Dockerfile on stdin, through the real CLI,
// including hostile archives that try to write outside the temporary context directory.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { execFile } from "node:child_process";
import { lstat, mkdir, readFile, readdir, readlink, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { join } from "node:path";
import { BIN, tempDir, tsbuild, type InProcessOptions } from "../helpers/cli.js";
import { compress, tarBytes } from "../helpers/tar-bytes.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let n = 0;
const r = (args: string[], opts: InProcessOptions = {}) => tsbuild([...args, "--root", root, "--progress", "plain"], { cwd: dir.path, ...opts });

beforeAll(async () => {
  dir = await tempDir();
  root = join(dir.path, "store");
});
afterAll(async () => {
  await dir?.cleanup();
});

/** Nothing of a context is left in the store's tmp area, and no stat cache is kept for a directory that is gone. */
async function expectNoLeftovers(): Promise<void> {
  const tmp = existsSync(join(root, "tmp")) ? await readdir(join(root, "tmp")) : [];
  expect(tmp.filter((f) => f.startsWith("context-"))).toEqual([]);
  const ctxCache = join(root, "cache", "context");
  expect(existsSync(ctxCache) ? await readdir(ctxCache) : []).toEqual([]);
}

async function exported(args: string[], stdin: Buffer | string): Promise<{ out: string; res: Awaited<ReturnType<typeof r>> }> {
  const out = join(dir.path, `out-${++n}`);
  const res = await r(["build", "-o", `type=local,dest=${out}`, ...args, "-"], { stdin });
  return { out, res };
}

const appTar = () =>
  tarBytes([
    { name: "Dockerfile", body: "FROM scratch\nCOPY . /app/\n" },
    { name: "src/", type: "directory" },
    { name: "src/main.txt", body: "hello from a tar\n" },
    { name: "up", type: "symlink", linkname: "/etc/passwd" },
  ]);

describe("build - with a tar on stdin", () => {
  for (const kind of ["none", "gzip", "bzip2", "xz"] as const) {
    it(`takes a ${kind === "none" ? "plain" : kind} tar as the context`, async () => {
      const { out, res } = await exported([], await compress(await appTar(), kind));
      expect(res.code, res.stderr).toBe(0);
      expect(await readFile(join(out, "app/src/main.txt"), "utf8")).toBe("hello from a tar\n");
      // A symlink out is kept as a symlink.
      expect((await lstat(join(out, "app/up"))).isSymbolicLink()).toBe(true);
      expect(await readlink(join(out, "app/up"))).toBe("/etc/passwd");
      await expectNoLeftovers();
    });
  }

  it("finds -f NAME inside the tar and records the context in the metadata file", async () => {
    const data = await tarBytes([
      { name: "docker/", type: "directory" },
      { name: "docker/Build.dockerfile", body: "FROM scratch\nCOPY hello.txt /\n" },
      { name: "hello.txt", body: "hi\n" },
    ]);
    const meta = join(dir.path, "meta.json");
    const { out, res } = await exported(["-f", "docker/Build.dockerfile", "--metadata-file", meta], data);
    expect(res.code, res.stderr).toBe(0);
    expect(await readFile(join(out, "hello.txt"), "utf8")).toBe("hi\n");
    expect(JSON.parse(await readFile(meta, "utf8"))["tsbuild.context"]).toEqual({ type: "stdin", format: "tar" });
  });

  it("gives the same image id for the same tar twice (content keys, no temp paths)", async () => {
    const data = await compress(await appTar(), "gzip");
    const meta = join(dir.path, "meta-again.json");
    const a = await r(["build", "-q", "-"], { stdin: data });
    const b = await r(["build", "-q", "--metadata-file", meta, "-"], { stdin: data });
    expect(a.code, a.stderr).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(JSON.parse(await readFile(meta, "utf8"))["tsbuild.cache"]).toMatchObject({ hits: 1, misses: 0 });
  });

  it("says when -f names a file the tar does not have", async () => {
    const res = await r(["build", "-f", "nope/Dockerfile", "-"], { stdin: await appTar() });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("error: cannot find the Dockerfile nope/Dockerfile in the build context <stdin> [DOCKERFILE_NOT_FOUND]");
    await expectNoLeftovers();
  });
});

describe("build - with a Dockerfile on stdin", () => {
  it("builds it with an empty context", async () => {
    const res = await r(["build", "-t", "from-stdin", "-"], { stdin: "FROM scratch\nLABEL origin=stdin\n" });
    expect(res.code, res.stderr).toBe(0);
    const info = JSON.parse((await tsbuild(["inspect", "from-stdin", "--root", root])).stdout)[0];
    expect(info.Config.config.Labels).toEqual({ origin: "stdin" });
    await expectNoLeftovers();
  });

  it("has nothing to COPY: the context is empty", async () => {
    const res = await r(["build", "-"], { stdin: "FROM scratch\nCOPY a.txt /\n" });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/a\.txt/);
    expect(res.stderr).toMatch(/\[SOURCE_NOT_FOUND\]/);
    expect(res.stderr).not.toContain("this is a bug");
    await expectNoLeftovers();
  });

  it("refuses stdin as both context and Dockerfile", async () => {
    const res = await r(["build", "-f", "-", "-"], { stdin: "FROM scratch\n" });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("standard input cannot be both the build context (`-`) and the Dockerfile (`-f -`) [BAD_ARGS]");
  });

  it("refuses a terminal on stdin instead of waiting for typing", async () => {
    const res = await r(["build", "-"], { stdinIsTTY: true });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("reads the build context from standard input, but it is a terminal [STDIN_IS_TERMINAL]");
    expect(res.stderr).toMatch(/hint: pipe a tar or a Dockerfile into it/);
  });
});

describe("build - with a hostile tar", () => {
  async function refused(members: Parameters<typeof tarBytes>[0], pattern: RegExp, code: string) {
    const outside = join(dir.path, `outside-${++n}`);
    await mkdir(outside);
    const data = await tarBytes(members.map((m) => ({ ...m, ...(m.linkname === "OUTSIDE" ? { linkname: outside } : {}) })));
    const res = await r(["build", "-"], { stdin: data });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(pattern);
    expect(res.stderr).toContain(`[${code}]`);
    expect(res.stderr).not.toContain("this is a bug");
    expect(await readdir(outside)).toEqual([]);
    await expectNoLeftovers();
  }

  it("never writes through a symlink that points out", async () => {
    await refused(
      [
        { name: "Dockerfile", body: "FROM scratch\n" },
        { name: "evil", type: "symlink", linkname: "OUTSIDE" },
        { name: "evil/pwned", body: "gotcha\n" },
      ],
      /build context tar from standard input: refusing to extract member "evil\/pwned": evil is a symlink/,
      "UNSAFE_PATH",
    );
  });

  it("never writes through a relative symlink that climbs out either", async () => {
    await refused(
      [
        { name: "Dockerfile", body: "FROM scratch\n" },
        { name: "up", type: "symlink", linkname: "../../../../../../../../.." },
        { name: "up/tmp/pwned", body: "gotcha\n" },
      ],
      /refusing to extract member "up\/tmp\/pwned"/,
      "UNSAFE_PATH",
    );
  });

  it("refuses a member with ..", async () => {
    await refused(
      [
        { name: "Dockerfile", body: "FROM scratch\n" },
        { name: "../x", body: "gotcha\n" },
      ],
      /member "..\/x": path contains '..'/,
      "UNSAFE_PATH",
    );
  });

  it("refuses an absolute member", async () => {
    await refused([{ name: "/abs", body: "gotcha\n" }], /member "\/abs": path is absolute/, "UNSAFE_PATH");
  });

  it("refuses a hardlink to a file outside", async () => {
    await refused(
      [
        { name: "Dockerfile", body: "FROM scratch\n" },
        { name: "l", type: "link", linkname: "/etc/passwd" },
      ],
      /hardlink target/,
      "UNSAFE_PATH",
    );
  });

  it("leaves a device node out, with a warning", async () => {
    const data = await tarBytes([
      { name: "Dockerfile", body: "FROM scratch\nCOPY . /c/\n" },
      { name: "disk", type: "block-device", devmajor: 8, devminor: 0, mode: 0o666 },
      { name: "ok.txt", body: "fine\n" },
    ]);
    const { out, res } = await exported([], data);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('left out the device node "disk" (a build context holds no devices)');
    expect(existsSync(join(out, "c/disk"))).toBe(false);
    expect(await readFile(join(out, "c/ok.txt"), "utf8")).toBe("fine\n");
  });

  it("names stdin for a truncated gzip", async () => {
    const gz = await compress(await appTar(), "gzip");
    const res = await r(["build", "-"], { stdin: gz.subarray(0, Math.floor(gz.length / 2)) });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/error: the build context tar from standard input .*truncated or corrupt.* \[TRUNCATED\]/);
    expect(res.stderr).not.toContain("this is a bug");
    await expectNoLeftovers();
  });

  it("notices a plain tar cut at a member boundary", async () => {
    const t = await appTar();
    // Drop the end-of-archive blocks: every member still parses.
    const res = await r(["build", "-"], { stdin: t.subarray(0, t.length - 1024) });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/standard input is truncated: it has no end-of-archive marker \[TRUNCATED\]/);
    await expectNoLeftovers();
  });

  it("names stdin for a plain tar cut inside a member", async () => {
    const t = await tarBytes([
      { name: "Dockerfile", body: "FROM scratch\n" },
      { name: "big", body: Buffer.alloc(10_000, 1) },
    ]);
    const res = await r(["build", "-"], { stdin: t.subarray(0, 3000) });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/the build context tar from standard input is truncated/);
    expect(res.stderr).toContain("[TRUNCATED]");
  });
});

describe("build - as a real process", () => {
  it("builds a tar piped from GNU tar", async () => {
    const ctx = join(dir.path, "piped-ctx");
    await mkdir(ctx);
    await writeFile(join(ctx, "Dockerfile"), "FROM scratch\nCOPY f.txt /\n");
    await writeFile(join(ctx, "f.txt"), "piped\n");
    const { stdout } = await promisify(execFile)("sh", ["-c", `tar -C "${ctx}" -cz . | "${process.execPath}" "${BIN}" build -q --root "${root}" -`]);
    expect(stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
  });
});
