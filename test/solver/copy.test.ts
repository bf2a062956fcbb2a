import { chmod, chown, cp, lstat, mkdir, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openBuildContext, type BuildContext } from "../../src/context/build-context.js";
import type { SourceRange } from "../../src/frontend/types.js";
import { applyCopy, ensureDir, type CopyOptions } from "../../src/solver/copy.js";
import { brief, content, diskView, linkOf, tempDir, tree } from "./copy-helpers.js";

const fixtureEtc = fileURLToPath(new URL("../../fixtures/copy/etc", import.meta.url));
const range: SourceRange = { file: "Dockerfile", start: { line: 3, column: 1 }, end: { line: 3, column: 30 } };
const EPOCH = 1_700_000_000;
const SRC_MTIME = 1_600_000_000;

let ctxDir: string;
let rootfs: string;
let ctx: BuildContext;

function copy(sources: string[], dest: string, extra: Partial<CopyOptions> = {}) {
  return applyCopy({ rootfs, sources, dest, workdir: "/", from: { kind: "context", context: ctx }, isAdd: false, epoch: EPOCH, range, ...extra });
}

beforeEach(async () => {
  ctxDir = await tempDir("copy-ctx-");
  rootfs = await tempDir("copy-root-");
  await tree(ctxDir, {
    "a.txt": "A",
    "b.txt": "B",
    "run.sh": "#!/bin/sh\n",
    "app/index.js": "index",
    "app/lib/util.js": "util",
    "app/.env": "secret",
    "app/docs/README.md": "readme",
    "app/docs/keep.md": "keep",
  });
  await chmod(path.join(ctxDir, "run.sh"), 0o755);
  await chmod(path.join(ctxDir, "app"), 0o750);
  // Context ownership must not leak into the image.
  await chown(path.join(ctxDir, "a.txt"), 1234, 5678);
  await symlink("index.js", path.join(ctxDir, "app/link-index"));
  await symlink("/etc/passwd", path.join(ctxDir, "app/abs-link"));
  await symlink("/etc/passwd", path.join(ctxDir, "outside"));
  for (const f of ["a.txt", "b.txt", "run.sh", "app/index.js", "app/lib/util.js"]) await utimes(path.join(ctxDir, f), SRC_MTIME, SRC_MTIME);
  await tree(rootfs, { "etc/": "", "tmp/": "", "usr/lib/": "", "opt/app/": "" });
  await cp(fixtureEtc, path.join(rootfs, "etc"), { recursive: true });
  await chmod(path.join(rootfs, "tmp"), 0o1777);
  await utimes(path.join(rootfs, "tmp"), 1000, 1000);
  await symlink("usr/lib", path.join(rootfs, "lib"));
  await symlink("/opt/app", path.join(rootfs, "app"));
  await symlink("../../../../../../opt", path.join(rootfs, "escape"));
  ctx = openBuildContext(ctxDir, []);
});
afterEach(async () => {
  await rm(ctxDir, { recursive: true, force: true });
  await rm(rootfs, { recursive: true, force: true });
});

describe("applyCopy: files", () => {
  it("copies a file to a new path, creating parents 0755 root:root at the epoch, owner reset to root", async () => {
    const entries = await copy(["a.txt"], "/srv/data/file.txt");
    expect(brief(entries)).toEqual(["srv directory 0755 0:0", "srv/data directory 0755 0:0", "srv/data/file.txt file 0644 0:0"]);
    expect(entries[0]?.mtime).toBe(EPOCH);
    expect(entries[2]).toMatchObject({ mtime: SRC_MTIME, size: 1, source: path.join(rootfs, "srv/data/file.txt") });
    expect(await content(rootfs, "srv/data/file.txt")).toBe("A");
    expect(await diskView(rootfs, "srv")).toEqual(["srv/data directory 0755 0:0", "srv/data/file.txt file 0644 0:0"]);
    expect((await stat(path.join(rootfs, "srv"))).mtimeMs / 1000).toBe(EPOCH);
  });

  it("puts a file inside a dest ending in / and keeps an existing parent's metadata (/tmp 1777)", async () => {
    const entries = await copy(["run.sh"], "/tmp/");
    expect(brief(entries)).toEqual(["tmp directory 1777 0:0", "tmp/run.sh file 0755 0:0"]);
    expect(entries[0]?.mtime).toBe(1000);
    // The parent's mtime on disk is restored too, so disk and layer agree.
    expect((await stat(path.join(rootfs, "tmp"))).mtimeMs).toBe(1000 * 1000);
  });

  it("overwrites an existing file and treats an existing dir as the directory to copy into", async () => {
    await writeFile(path.join(rootfs, "etc/a.txt"), "old");
    await copy(["a.txt"], "/etc/a.txt");
    expect(await content(rootfs, "etc/a.txt")).toBe("A");
    const entries = await copy(["b.txt"], "/etc");
    expect(brief(entries)).toEqual(["etc directory 0755 0:0", "etc/b.txt file 0644 0:0"]);
  });

  it("resolves a relative dest against the workdir", async () => {
    const entries = await copy(["a.txt"], "sub/", { workdir: "/opt/app" });
    expect(brief(entries).map((l) => l.split(" ")[0])).toEqual(["opt", "opt/app", "opt/app/sub", "opt/app/sub/a.txt"]);
    const e2 = await copy(["b.txt"], ".", { workdir: "/opt/app" });
    expect(e2.at(-1)?.path).toBe("opt/app/b.txt");
  });

  it("copies several sources onto a dest without a slash one after another, as BuildKit does", async () => {
    // Files: the first becomes /x, the next replaces it (moby/moby#47064: no check of the number of sources).
    expect(brief(await copy(["a.txt", "b.txt"], "/x"))).toEqual(["x file 0644 0:0"]);
    expect(await content(rootfs, "x")).toBe("B");
    expect(brief(await copy(["*.txt"], "/y"))).toEqual(["y file 0644 0:0"]);
    expect(await content(rootfs, "y")).toBe("B");
    // A directory first: /z is a directory by then, so the file goes inside.
    expect((await copy(["app/lib", "a.txt"], "/z")).map((e) => e.path)).toEqual(["z", "z/a.txt", "z/util.js"]);
    // A file first: the directory cannot be copied onto it, and it fails as BuildKit does.
    await expect(copy(["a.txt", "app/lib"], "/w")).rejects.toMatchObject({ code: "DEST_NOT_DIR", message: expect.stringContaining("non-directory /w"), range });
    const entries = await copy(["*.txt", "run.sh"], "/v/");
    expect(entries.map((e) => e.path)).toEqual(["v", "v/a.txt", "v/b.txt", "v/run.sh"]);
    // An existing directory counts as a directory dest even without the slash.
    expect((await copy(["a.txt", "b.txt"], "/etc")).map((e) => e.path)).toEqual(["etc", "etc/a.txt", "etc/b.txt"]);
  });

  it("reports missing sources before writing anything; `..` stays in the context and a pattern may match nothing", async () => {
    await expect(copy(["a.txt", "missing.txt"], "/d/")).rejects.toMatchObject({ code: "SOURCE_NOT_FOUND", message: expect.stringContaining("Dockerfile:3") });
    await expect(lstat(path.join(rootfs, "d"))).rejects.toThrow();
    // Clamped at the context root: the context's a.txt, never the host's /etc/passwd.
    expect(brief(await copy(["../../a.txt"], "/d/"))).toEqual(["d directory 0755 0:0", "d/a.txt file 0644 0:0"]);
    await expect(copy(["../etc/passwd"], "/e/")).rejects.toMatchObject({ code: "SOURCE_NOT_FOUND" });
    // BuildKit's AllowEmptyWildcard: nothing copied, not even the destination directory.
    expect(await copy(["*.nothing"], "/f/")).toEqual([]);
    await expect(lstat(path.join(rootfs, "f"))).rejects.toThrow();
    expect((await copy(["*.nothing", "b.txt"], "/g/")).map((e) => e.path)).toEqual(["g", "g/b.txt"]);
    await expect(copy(["nodir/*.txt", "b.txt"], "/h/")).rejects.toMatchObject({ code: "SOURCE_NOT_FOUND", message: expect.stringContaining('"nodir"') });
  });

  it("rejects URLs clearly", async () => {
    // ADD's remote sources are fetched before applyCopy (solver/remote-source.ts); one it was not handed is refused.
    await expect(copy(["ftp://example.com/x.tar.gz"], "/d/", { isAdd: true })).rejects.toMatchObject({
      code: "BAD_SOURCE",
      message: expect.stringContaining("remote sources are http(s) URLs and git repositories"),
    });
    await expect(copy(["https://example.com/x"], "/d/")).rejects.toMatchObject({ code: "BAD_SOURCE" });
  });
});

describe("applyCopy: directories", () => {
  it("copies a directory's contents (not the dir) into a new dest created 0755 root:root as BuildKit does", async () => {
    const entries = await copy(["app"], "/srv/app");
    expect(brief(entries)).toEqual([
      "srv directory 0755 0:0",
      "srv/app directory 0755 0:0",
      "srv/app/.env file 0644 0:0",
      "srv/app/abs-link symlink 0777 0:0",
      "srv/app/docs directory 0755 0:0",
      "srv/app/docs/README.md file 0644 0:0",
      "srv/app/docs/keep.md file 0644 0:0",
      "srv/app/index.js file 0644 0:0",
      "srv/app/lib directory 0755 0:0",
      "srv/app/lib/util.js file 0644 0:0",
      "srv/app/link-index symlink 0777 0:0",
    ]);
    expect(await diskView(rootfs, "srv")).toEqual(brief(entries).slice(1));
    // Symlinks stay symlinks; one pointing outside the context is copied as a link, never followed.
    expect(await linkOf(rootfs, "srv/app/link-index")).toBe("index.js");
    expect(await linkOf(rootfs, "srv/app/abs-link")).toBe("/etc/passwd");
    expect(entries.find((e) => e.path === "srv/app/abs-link")?.linkname).toBe("/etc/passwd");
  });

  it("merges into an existing dest dir keeping its metadata; nested dirs take the source's", async () => {
    await mkdir(path.join(rootfs, "srv/app/docs"), { recursive: true });
    await chmod(path.join(rootfs, "srv/app"), 0o700);
    await chmod(path.join(rootfs, "srv/app/docs"), 0o700);
    await writeFile(path.join(rootfs, "srv/app/docs/old.md"), "old");
    const entries = await copy(["app/"], "/srv/app/");
    expect(brief(entries).slice(0, 3)).toEqual(["srv directory 0755 0:0", "srv/app directory 0700 0:0", "srv/app/.env file 0644 0:0"]);
    expect(brief(entries)).toContain("srv/app/docs directory 0755 0:0");
    expect(await content(rootfs, "srv/app/docs/old.md")).toBe("old");
  });

  it("honours .dockerignore with ! re-includes inside a copied directory", async () => {
    ctx = openBuildContext(ctxDir, ["app/docs", "!app/docs/keep.md", "**/.env", "outside"]);
    const entries = await copy(["."], "/srv/");
    const paths = entries.map((e) => e.path);
    expect(paths).toContain("srv/app/docs/keep.md");
    expect(paths).not.toContain("srv/app/docs/README.md");
    expect(paths).not.toContain("srv/app/.env");
    expect(paths).not.toContain("srv/outside");
    await expect(lstat(path.join(rootfs, "srv/app/.env"))).rejects.toThrow();
  });

  it("fails to copy a directory onto a file, and replaces nothing", async () => {
    await writeFile(path.join(rootfs, "etc/conf"), "x");
    await expect(copy(["app"], "/etc/conf")).rejects.toMatchObject({ code: "DEST_NOT_DIR" });
    expect(await content(rootfs, "etc/conf")).toBe("x");
  });

  it("writes through rootfs symlinks chroot-style (dest and merged-/usr dirs)", async () => {
    // /app -> /opt/app (absolute): resolved inside the rootfs, not on the host.
    const e1 = await copy(["a.txt"], "/app/");
    expect(e1.map((e) => e.path)).toEqual(["opt", "opt/app", "opt/app/a.txt"]);
    const e2 = await copy(["b.txt"], "/escape/b.txt");
    expect(e2.map((e) => e.path)).toEqual(["opt", "opt/b.txt"]);
    // A tree with lib/ copied to / lands in /usr/lib through the /lib -> usr/lib link, which stays a link.
    await tree(ctxDir, { "root/lib/libx.so": "so" });
    const e3 = await copy(["root"], "/");
    expect(e3.map((e) => e.path)).toEqual(["usr", "usr/lib", "usr/lib/libx.so"]);
    expect((await lstat(path.join(rootfs, "lib"))).isSymbolicLink()).toBe(true);
  });
});

describe("applyCopy: --chown, --chmod", () => {
  it("gives files root ownership even inside a setgid directory (no inherited gid)", async () => {
    await mkdir(path.join(rootfs, "shared"));
    await chown(path.join(rootfs, "shared"), 0, 50);
    await chmod(path.join(rootfs, "shared"), 0o2775);
    const entries = await copy(["app"], "/shared/");
    expect(brief(entries)[0]).toBe("shared directory 2775 0:50");
    expect((await diskView(rootfs, "shared")).filter((l) => !l.endsWith(" 0:0"))).toEqual([]);
  });

  it("chowns copied files and created dirs by name from the target's /etc/passwd", async () => {
    const entries = await copy(["app"], "/home/app/src", { chown: "app" });
    expect(brief(entries).slice(0, 4)).toEqual([
      "home directory 0755 1000:1001",
      "home/app directory 0755 1000:1001",
      "home/app/src directory 0755 1000:1001",
      "home/app/src/.env file 0644 1000:1001",
    ]);
    expect(entries.every((e) => e.uid === 1000 && e.gid === 1001)).toBe(true);
    expect((await diskView(rootfs, "home")).every((l) => l.endsWith(" 1000:1001"))).toBe(true);
    const e2 = await copy(["a.txt"], "/tmp/", { chown: "app:staff" });
    expect(brief(e2)).toEqual(["tmp directory 1777 0:0", "tmp/a.txt file 0644 1000:50"]);
    const e3 = await copy(["b.txt"], "/tmp/", { chown: "4000" });
    expect(brief(e3)[1]).toBe("tmp/b.txt file 0644 4000:4000");
    // BuildKit never fails a --chown lookup: an unknown user is 0:0, an unknown group keeps the user part's gid.
    expect(brief(await copy(["b.txt"], "/u1/", { chown: "ghost" }))).toEqual(["u1 directory 0755 0:0", "u1/b.txt file 0644 0:0"]);
    expect(brief(await copy(["b.txt"], "/u2/", { chown: "ghost:staff" }))[1]).toBe("u2/b.txt file 0644 0:50");
    expect(brief(await copy(["b.txt"], "/u3/", { chown: "app:ghosts" }))[1]).toBe("u3/b.txt file 0644 1000:1001");
    expect(brief(await copy(["b.txt"], "/u4/", { chown: "4000:ghosts" }))[1]).toBe("u4/b.txt file 0644 4000:4000");
  });

  it("applies octal and symbolic --chmod to files and copied dirs, not to created parents", async () => {
    const e1 = await copy(["app"], "/p/app", { chmod: "0640" });
    expect(brief(e1)).toContain("p directory 0755 0:0");
    expect(brief(e1)).toContain("p/app directory 0640 0:0");
    expect(brief(e1)).toContain("p/app/index.js file 0640 0:0");
    const e2 = await copy(["run.sh", "a.txt"], "/q/", { chmod: "u=rwx,go=rX" });
    // As chmod(1): X sees the x bit that u=rwx just set.
    expect(brief(e2)).toEqual(["q directory 0755 0:0", "q/a.txt file 0755 0:0", "q/run.sh file 0755 0:0"]);
    const e3 = await copy(["a.txt"], "/r", { chmod: "4755" });
    expect(brief(e3)).toEqual(["r file 4755 0:0"]);
    expect((await stat(path.join(rootfs, "r"))).mode & 0o7777).toBe(0o4755);
    await expect(copy(["a.txt"], "/r", { chmod: "u+q" })).rejects.toMatchObject({ code: "BAD_CHMOD" });
  });
});

describe("applyCopy: heredocs, --from, mtimes", () => {
  it("creates heredoc files 0644 at the epoch", async () => {
    const e1 = await copy([], "/etc/motd", { heredocs: [{ name: "EOF", content: "hello\n" }] });
    expect(brief(e1)).toEqual(["etc directory 0755 0:0", "etc/motd file 0644 0:0"]);
    expect(e1[1]).toMatchObject({ mtime: EPOCH, size: 6 });
    expect(await content(rootfs, "etc/motd")).toBe("hello\n");
    const e2 = await copy(["a.txt"], "/h/", {
      heredocs: [
        { name: "one", content: "1" },
        { name: "two", content: "2" },
      ],
    });
    expect(e2.map((e) => e.path)).toEqual(["h", "h/a.txt", "h/one", "h/two"]);
    // Like files, several heredocs onto a dest without a slash: the last one is the file.
    const e3 = await copy([], "/h2", {
      heredocs: [
        { name: "one", content: "1" },
        { name: "two", content: "2" },
      ],
    });
    expect(brief(e3)).toEqual(["h2 file 0644 0:0"]);
    expect(await content(rootfs, "h2")).toBe("2");
  });

  it("copies from another stage's rootfs by absolute path, chroot-resolving links and keeping ownership", async () => {
    const stage = await tempDir("copy-stage-");
    try {
      await tree(stage, { "build/out/bin/tool": "tool", "build/out/share/x": "x" });
      await chown(path.join(stage, "build/out/bin/tool"), 33, 44);
      await symlink("/build/out", path.join(stage, "dist"));
      await symlink("/etc/shadow", path.join(stage, "build/out/share/shadow-link"));
      const from = { kind: "rootfs" as const, dir: stage };
      const entries = await copy(["/dist/bin/tool", "dist/share"], "/usr/local/", { from });
      expect(brief(entries)).toEqual([
        "usr directory 0755 0:0",
        "usr/local directory 0755 0:0",
        "usr/local/shadow-link symlink 0777 0:0",
        "usr/local/tool file 0644 33:44",
        "usr/local/x file 0644 0:0",
      ]);
      await expect(copy(["/nope"], "/x/", { from })).rejects.toMatchObject({ code: "SOURCE_NOT_FOUND" });
      // A link pointing at the host's /etc/passwd is resolved inside the stage: not found there.
      await symlink("/etc/passwd", path.join(stage, "pw"));
      await expect(copy(["/pw"], "/x/", { from })).rejects.toMatchObject({ code: "SOURCE_NOT_FOUND" });
      const e2 = await copy(["/build/*/bin"], "/opt/", { from, chown: "app" });
      expect(brief(e2)).toEqual(["opt directory 0755 0:0", "opt/tool file 0644 1000:1001"]);
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  });

  it("keeps source mtimes unless clamped to the epoch", async () => {
    const [f] = await copy(["a.txt"], "/a.txt");
    expect(f?.mtime).toBe(SRC_MTIME);
    await utimes(path.join(ctxDir, "b.txt"), EPOCH + 500, EPOCH + 500);
    const [g] = await copy(["b.txt"], "/b.txt", { clampMtime: true });
    expect(g?.mtime).toBe(EPOCH);
    expect((await stat(path.join(rootfs, "b.txt"))).mtimeMs).toBe(EPOCH * 1000);
  });
});

describe("ensureDir", () => {
  it("creates a workdir with parents and reports existing parents as they were", async () => {
    const entries = await ensureDir(rootfs, "/tmp/work/dir", undefined, EPOCH);
    expect(brief(entries)).toEqual(["tmp directory 1777 0:0", "tmp/work directory 0755 0:0", "tmp/work/dir directory 0755 0:0"]);
    expect(entries[0]?.mtime).toBe(1000);
    expect(entries[2]?.mtime).toBe(EPOCH);
    expect(await ensureDir(rootfs, "/tmp/work/dir", undefined, EPOCH)).toEqual([]);
    expect(brief(await ensureDir(rootfs, "/app/w", { uid: 5, gid: 6 }, EPOCH))).toEqual([
      "opt directory 0755 0:0",
      "opt/app directory 0755 0:0",
      "opt/app/w directory 0755 5:6",
    ]);
  });
});
