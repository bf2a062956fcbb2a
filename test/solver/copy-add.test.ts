import { execFileSync } from "node:child_process";
import { lstat, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openBuildContext, type BuildContext } from "../../src/context/build-context.js";
import { applyCopy, isTarArchive, type CopyOptions } from "../../src/solver/copy.js";
import { brief, content, linkOf, tempDir, tree } from "./copy-helpers.js";

const EPOCH = 1_700_000_000;
let work: string;
let ctxDir: string;
let rootfs: string;
let ctx: BuildContext;

function add(sources: string[], dest: string, extra: Partial<CopyOptions> = {}) {
  return applyCopy({ rootfs, sources, dest, workdir: "/", from: { kind: "context", context: ctx }, isAdd: true, epoch: EPOCH, ...extra });
}

beforeEach(async () => {
  work = await tempDir("copy-add-");
  ctxDir = path.join(work, "ctx");
  rootfs = path.join(work, "rootfs");
  await mkdir(rootfs);
  await tree(path.join(work, "payload"), { "pkg/bin/tool": "tool", "pkg/README": "readme" });
  execFileSync("chmod", ["755", path.join(work, "payload/pkg/bin/tool")]);
  execFileSync("ln", ["-s", "bin/tool", path.join(work, "payload/pkg/tool-link")]);
  await mkdir(ctxDir);
  const tarArgs = ["--owner=1000", "--group=1000", "--numeric-owner", "-C", path.join(work, "payload"), "pkg"];
  execFileSync("tar", ["-czf", path.join(ctxDir, "a.tar.gz"), ...tarArgs]);
  execFileSync("tar", ["-cjf", path.join(ctxDir, "a.tar.bz2"), ...tarArgs]);
  execFileSync("tar", ["-cJf", path.join(ctxDir, "a.tar.xz"), ...tarArgs]);
  execFileSync("tar", ["-cf", path.join(ctxDir, "plain.tar"), ...tarArgs]);
  // Named like a text file: detection is by content, not by extension.
  execFileSync("tar", ["-czf", path.join(ctxDir, "archive.dat"), ...tarArgs]);
  await writeFile(path.join(ctxDir, "notes.txt"), "just text\n".repeat(100));
  execFileSync("gzip", ["-k", path.join(ctxDir, "notes.txt")]);
  // A tar with a ../ entry (tar -P keeps it).
  await mkdir(path.join(work, "evil/sub"), { recursive: true });
  await writeFile(path.join(work, "escaped.txt"), "pwned");
  execFileSync("tar", ["-cPf", path.join(ctxDir, "evil.tar"), "sub", "../escaped.txt"], { cwd: path.join(work, "evil") });
  await rm(path.join(work, "evil"), { recursive: true });
  await rm(path.join(work, "escaped.txt"));
  ctx = openBuildContext(ctxDir, []);
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("ADD of local archives", () => {
  for (const name of ["a.tar.gz", "a.tar.bz2", "a.tar.xz", "plain.tar", "archive.dat"]) {
    it(`extracts ${name} into the destination, keeping the archive's ownership`, async () => {
      const entries = await add([name], "/opt/");
      expect(brief(entries)).toEqual([
        "opt directory 0755 0:0",
        "opt/pkg directory 0755 1000:1000",
        "opt/pkg/README file 0644 1000:1000",
        "opt/pkg/bin directory 0755 1000:1000",
        "opt/pkg/bin/tool file 0755 1000:1000",
        "opt/pkg/tool-link symlink 0777 1000:1000",
      ]);
      expect(entries.find((e) => e.path === "opt/pkg/README")?.source).toBe(path.join(rootfs, "opt/pkg/README"));
      expect(await content(rootfs, "opt/pkg/bin/tool")).toBe("tool");
      expect(await linkOf(rootfs, "opt/pkg/tool-link")).toBe("bin/tool");
    });
  }

  it("extracts into a dest without a trailing slash as a directory", async () => {
    const entries = await add(["a.tar.gz"], "/srv");
    expect(entries.map((e) => e.path)).toContain("srv/pkg/bin/tool");
  });

  it("copies non-archives, including gzip files that are not tars", async () => {
    expect(await isTarArchive(path.join(ctxDir, "notes.txt.gz"))).toBe(false);
    expect(await isTarArchive(path.join(ctxDir, "a.tar.xz"))).toBe(true);
    const entries = await add(["notes.txt.gz", "notes.txt"], "/data/");
    expect(brief(entries)).toEqual(["data directory 0755 0:0", "data/notes.txt file 0644 0:0", "data/notes.txt.gz file 0644 0:0"]);
  });

  it("copies a tar as a file with COPY", async () => {
    const entries = await applyCopy({
      rootfs,
      sources: ["a.tar.gz"],
      dest: "/x.tgz",
      workdir: "/",
      from: { kind: "context", context: ctx },
      isAdd: false,
      epoch: EPOCH,
    });
    expect(entries.map((e) => e.path)).toEqual(["x.tgz"]);
  });

  it("unpacks an archive's ../ entries inside the destination, as BuildKit's chrooted untar does, never outside it", async () => {
    const entries = await add(["evil.tar"], "/app/");
    expect(entries.map((e) => e.path)).toEqual(["app", "app/escaped.txt", "app/sub"]);
    expect(await content(rootfs, "app/escaped.txt")).toBe("pwned");
    await expect(lstat(path.join(work, "escaped.txt"))).rejects.toThrow();
    await expect(lstat(path.join(rootfs, "escaped.txt"))).rejects.toThrow();
    expect(await readdir(rootfs)).toEqual(["app"]);
  });
});
