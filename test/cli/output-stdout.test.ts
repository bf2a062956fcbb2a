// `-o -` and `dest=-` (issue 16): the tar goes to standard output, as in buildx — run as a real process whose stdout
// is a file, so nothing but the tar may reach it — and never to a terminal.
import { spawn } from "node:child_process";
import { open, readFile, mkdir, writeFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, tempDir, tsbuild } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { exec } from "../helpers/tools.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let ctx: string;

/** The built CLI with stdout going to `outFile` (a real descriptor, as in `tsbuild build -o - . > out.tar`). */
async function buildTo(outFile: string, args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await open(outFile, "w");
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, "build", "--root", root, ...args], { stdio: ["ignore", out.fd, "pipe"] });
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code: code ?? -1, stderr }));
    });
  } finally {
    await out.close();
  }
}

beforeAll(async () => {
  dir = await tempDir("tsbuild-stdout-");
  root = join(dir.path, "store");
  const loaded = await tsbuild(["load", "-i", await makeBusyboxArchive(dir.path), "--root", root]);
  expect(loaded.code, loaded.stderr).toBe(0);
  ctx = join(dir.path, "ctx");
  await mkdir(ctx);
  await writeFile(join(ctx, "Dockerfile"), "FROM scratch\nCOPY hello.txt /hello.txt\n");
  await writeFile(join(ctx, "hello.txt"), "hi from the image\n");
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("-o - writes a tar to standard output", () => {
  it("-o - is the image's files as a tar (buildx's type=tar,dest=-); progress stays on stderr", async () => {
    const f = join(dir.path, "files.tar");
    const res = await buildTo(f, ["--progress=plain", "-o", "-", ctx]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain("COPY hello.txt");
    expect((await exec("tar", ["-tf", f])).stdout.split("\n")).toContain("hello.txt");
    expect((await exec("tar", ["-xOf", f, "hello.txt"])).stdout).toBe("hi from the image\n");
  });

  it("--output=type=docker,dest=- with -q: a docker-archive skopeo reads, and no image id mixed into it", async () => {
    const f = join(dir.path, "docker.tar");
    const res = await buildTo(f, ["-q", "-t", "stdout:1", "--output=type=docker,dest=-", ctx]);
    expect(res.code, res.stderr).toBe(0);
    // A tar is whole 512-byte blocks; an id line after it would break that.
    expect((await stat(f)).size % 512).toBe(0);
    expect((await readFile(f)).subarray(-1024).every((b) => b === 0)).toBe(true);
    const info = JSON.parse((await exec("skopeo", ["inspect", `docker-archive:${f}`])).stdout);
    expect(info.Layers).toHaveLength(1);
  });

  it("-o type=oci,dest=- is an OCI layout tar", async () => {
    const f = join(dir.path, "oci.tar");
    const res = await buildTo(f, ["-q", "-o", "type=oci,dest=-", ctx]);
    expect(res.code, res.stderr).toBe(0);
    const raw = JSON.parse((await exec("skopeo", ["inspect", "--raw", `oci-archive:${f}`])).stdout);
    expect(raw.layers).toHaveLength(1);
  });

  it("a reader that closes the pipe early gets a clear error, not a crash or a bug report", async () => {
    const big = join(dir.path, "big");
    await mkdir(big);
    await writeFile(join(big, "Dockerfile"), "FROM scratch\nCOPY blob /blob\n");
    await writeFile(join(big, "blob"), Buffer.alloc(8 * 1024 * 1024, 7));
    const res = await new Promise<{ code: number; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, "build", "--root", root, "-o", "type=docker,dest=-", big], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      child.stdout.once("data", () => child.stdout.destroy());
      child.on("error", reject);
      child.on("close", (code) => resolve({ code: code ?? -1, stderr }));
    });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("broken pipe");
    expect(res.stderr).not.toContain("this is a bug");
  });

  it("refuses to write a tar to a terminal, before building", async () => {
    for (const o of ["-", "type=tar,dest=-", "type=docker,dest=-", "type=oci,dest=-"]) {
      const res = await tsbuild(["build", "--root", root, "-o", o, ctx], { stdoutIsTTY: true });
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toContain("refusing to write a tar to a terminal; redirect stdout or give dest=FILE [BAD_FLAG_VALUE]");
      expect(res.stderr).toContain("hint:");
      expect(res.stdout).toBe("");
    }
  });

  it("type=local or tar=false to stdout, and two outputs to stdout, are usage errors", async () => {
    for (const [o, msg] of [
      [["-o", "type=local,dest=-"], "a directory cannot be written to standard output"],
      [["-o", "type=oci,dest=-,tar=false"], "a directory cannot be written to standard output"],
      [["-o", "-", "-o", "type=docker,dest=-"], "only one output can go to standard output"],
    ] as const) {
      const res = await tsbuild(["build", "--root", root, ...o, ctx]);
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toContain(msg);
    }
  });
});
