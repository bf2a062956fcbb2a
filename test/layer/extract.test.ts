import { execFile } from "node:child_process";
import { chmod, link, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import tar from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { extractLayer, listLayer } from "../../src/layer/extract.js";
import { storeLayer } from "../../src/layer/store-layer.js";
import { openContentStore } from "../../src/store/content-store.js";
import type { LayerEntry } from "../../src/layer/types.js";
import { describeTree, hasTool, treeEntries } from "./fs-tree.js";

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), "tsbuild-ex-"));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

type RawEntry = { name: string; type?: tar.Header["type"]; linkname?: string; body?: string; mode?: number };

/** A tar with exactly these headers (no cleaning), as a malicious or foreign producer would write it. */
async function rawTar(entries: RawEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const type = e.type ?? "file";
    const h = {
      name: e.name,
      type,
      mode: e.mode ?? (type === "directory" ? 0o755 : 0o644),
      mtime: new Date(0),
      ...(e.linkname ? { linkname: e.linkname } : {}),
    };
    if (type === "file") pack.entry(h, e.body ?? "");
    else pack.entry(h);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function extractRaw(entries: RawEntry[], dest: string): Promise<void> {
  await extractLayer(Readable.from([await rawTar(entries)]), dest);
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

describe("extractLayer round trip", () => {
  it("reproduces files, dirs, symlinks, hardlinks, long names, special bits, xattrs, fifos and devices", async () => {
    const src = join(work, "src");
    const dst = join(work, "dst");
    await mkdir(join(src, "usr", "bin"), { recursive: true });
    await mkdir(dst);
    await writeFile(join(src, "usr", "bin", "tool"), "#!/bin/sh\necho hi\n");
    await chmod(join(src, "usr", "bin", "tool"), 0o4755);
    await link(join(src, "usr", "bin", "tool"), join(src, "usr", "bin", "tool-alias"));
    await symlink("tool", join(src, "usr", "bin", "t"));
    await symlink("/nonexistent/abs", join(src, "dangling"));
    const longDir = join(src, "l".repeat(100), "m".repeat(100));
    await mkdir(longDir, { recursive: true });
    await writeFile(join(longDir, "n".repeat(120)), Buffer.alloc(200_000, 9));
    await mkdir(join(src, "tmp"));
    await chmod(join(src, "tmp"), 0o1777);
    await mkdir(join(src, "ro"));
    await writeFile(join(src, "ro", "inside"), "x");
    await chmod(join(src, "ro"), 0o555);
    await writeFile(join(src, "ünïcödé €"), "utf-8 name");
    await writeFile(join(src, "sgid"), "");
    await chmod(join(src, "sgid"), 0o2710);
    await run("mkfifo", [join(src, "fifo")]);
    if (isRoot) {
      await run("mknod", [join(src, "null"), "c", "1", "3"]);
      await run("chown", ["-h", "1234:5678", join(src, "usr", "bin", "t")]);
      await run("chown", ["4321:8765", join(src, "sgid")]);
      await chmod(join(src, "sgid"), 0o2710); // chown cleared it
    }
    const xattrs =
      (await hasTool("setfattr")) &&
      (await run("setfattr", ["-n", "user.tsbuild", "-v", "hello", join(src, "sgid")]).then(
        () => true,
        () => false,
      ));
    // Old, distinct mtimes, set last (children first) so nothing bumps them afterwards.
    const entries0 = await treeEntries(src);
    for (const e of [...entries0].reverse()) {
      if (e.type !== "symlink") await utimes(join(src, e.path), 1_000_000 + e.path.length, 1_000_000 + e.path.length);
    }
    await utimes(src, 5, 5);

    const store = openContentStore(join(work, "store"));
    const entries = await treeEntries(src, { xattrs });
    const { diffId } = await storeLayer(store, entries);
    await extractLayer(store.read(diffId), dst);

    // GNU tar must read the same names back (format interop, PAX long and UTF-8 names).
    const { stdout } = await run("tar", ["-tf", store.path(diffId)], { maxBuffer: 1 << 24 });
    expect(
      stdout
        .split("\n")
        .filter(Boolean)
        .map((n) => n.replace(/\/$/, "")),
    ).toEqual(entries.map((e) => e.path).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));

    const want = await describeTree(src, { xattrs });
    const got = await describeTree(dst, { xattrs });
    // Symlink mtimes depend on lutimes support; compare everything else exactly.
    const strip = (t: Record<string, unknown>[]) => t.map((e) => (e["type"] === "symlink" ? { ...e, mtime: 0 } : e));
    expect(strip(got)).toEqual(strip(want));
    expect(got.find((e) => e["path"] === "usr/bin/tool-alias")).toMatchObject({ type: "hardlink", linkname: "usr/bin/tool" });
    expect(got.find((e) => e["path"] === "usr/bin/tool")).toMatchObject({ mode: 0o4755 });
    if (isRoot) expect(got.find((e) => e["path"] === "null")).toMatchObject({ type: "char-device", devmajor: 1, devminor: 3 });
    if (xattrs) expect(got.find((e) => e["path"] === "sgid")).toMatchObject({ xattrs: { "user.tsbuild": "hello" } });
  });

  it("skips device nodes without root and reports every entry through onEntry", async () => {
    const dst = join(work, "dst");
    await mkdir(dst);
    const pack = tar.pack();
    pack.entry({ name: "dev/", type: "directory", mode: 0o755 });
    pack.entry({ name: "dev/null", type: "character-device", mode: 0o666, devmajor: 1, devminor: 3 });
    pack.entry({ name: "f", type: "file", mode: 0o644 }, "x");
    pack.finalize();
    const seen: LayerEntry[] = [];
    await extractLayer(pack as unknown as Readable, dst, { root: false, onEntry: (e) => seen.push(e) });
    expect(seen.map((e) => `${e.type}:${e.path}`)).toEqual(["directory:dev", "char-device:dev/null", "file:f"]);
    expect(await exists(join(dst, "dev", "null"))).toBe(false);
    expect(await readFile(join(dst, "f"), "utf8")).toBe("x");
  });

  it("accepts gzip-compressed layers", async () => {
    const dst = join(work, "dst");
    await mkdir(dst);
    const { gzipSync } = await import("node:zlib");
    await extractLayer(Readable.from([gzipSync(await rawTar([{ name: "./a/b", body: "bee" }]))]), dst);
    expect(await readFile(join(dst, "a", "b"), "utf8")).toBe("bee");
    const listed = [];
    for await (const e of listLayer(Readable.from([gzipSync(await rawTar([{ name: "./a/b", body: "bee" }]))]))) listed.push(e.path);
    expect(listed).toEqual(["a/b"]);
  });
});

describe("extractLayer whiteouts and replacement", () => {
  it("applies .wh. deletions and opaque directories, keeping what the same layer adds", async () => {
    const dst = join(work, "dst");
    await mkdir(dst);
    await extractRaw(
      [
        { name: "d/", type: "directory" },
        { name: "d/a", body: "a" },
        { name: "d/b", body: "b" },
        { name: "d/sub/", type: "directory" },
        { name: "d/sub/deep", body: "deep" },
        { name: "f", body: "f" },
        { name: "o/", type: "directory" },
        { name: "o/old", body: "old" },
        { name: "o/olddir/", type: "directory" },
        { name: "o/olddir/x", body: "x" },
        { name: "o/keepdir/", type: "directory" },
        { name: "o/keepdir/lower", body: "lower" },
      ],
      dst,
    );
    await extractRaw(
      [
        { name: ".wh.f", body: "" },
        { name: "d/.wh.a" },
        { name: "d/.wh.sub" },
        { name: "o/", type: "directory" },
        { name: "o/-new", body: "sorted before the opaque marker" },
        { name: "o/.wh..wh..opq" },
        { name: "o/keepdir/", type: "directory" },
        { name: "o/keepdir/upper", body: "upper" },
        { name: "o/z", body: "z" },
        { name: "gone/.wh.nothing" },
      ],
      dst,
    );
    expect(await exists(join(dst, "f"))).toBe(false);
    expect((await readdir(join(dst, "d"))).sort()).toEqual(["b"]);
    expect((await readdir(join(dst, "o"))).sort()).toEqual(["-new", "keepdir", "z"]);
    expect((await readdir(join(dst, "o", "keepdir"))).sort()).toEqual(["upper"]);
    expect(await exists(join(dst, "gone"))).toBe(false);
    expect((await readdir(dst)).filter((n) => n.startsWith(".wh."))).toEqual([]);
  });

  it("replaces entries of a different type: file over dir, dir over file, file over symlink", async () => {
    const dst = join(work, "dst");
    const outside = join(work, "outside");
    await mkdir(dst);
    await writeFile(outside, "precious");
    await extractRaw(
      [
        { name: "x/", type: "directory" },
        { name: "x/child", body: "c" },
        { name: "y", body: "file" },
      ],
      dst,
    );
    await symlink(outside, join(dst, "z"));
    await extractRaw(
      [
        { name: "x", body: "now a file" },
        { name: "y/", type: "directory" },
        { name: "y/in", body: "in" },
        { name: "z", body: "replaced" },
      ],
      dst,
    );
    expect(await readFile(join(dst, "x"), "utf8")).toBe("now a file");
    expect(await readFile(join(dst, "y", "in"), "utf8")).toBe("in");
    expect((await lstat(join(dst, "z"))).isFile()).toBe(true);
    expect(await readFile(outside, "utf8")).toBe("precious");
  });
});

describe("extractLayer safety", () => {
  let dest: string;
  let outside: string;
  beforeEach(async () => {
    // dest is two levels deep so that ../.. from it lands in `work`, where we can look for escapes.
    dest = join(work, "a", "dest");
    outside = join(work, "outside");
    await mkdir(dest, { recursive: true });
    await mkdir(outside);
    await writeFile(join(outside, "passwd"), "root:x:0:0");
  });

  async function expectUnsafe(entries: RawEntry[], code = "UNSAFE_PATH"): Promise<void> {
    const err = await extractRaw(entries, dest).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "ArchiveError", code });
    expect(String((err as Error).message)).toContain(JSON.stringify(entries[entries.length - 1]?.name));
  }

  async function nothingOutside(): Promise<void> {
    expect((await readdir(work)).sort()).toEqual(["a", "outside"]);
    expect((await readdir(join(work, "a"))).sort()).toEqual(["dest"]);
    expect(await readdir(outside)).toEqual(["passwd"]);
    expect(await readFile(join(outside, "passwd"), "utf8")).toBe("root:x:0:0");
  }

  it("rejects ../ escapes", async () => {
    await expectUnsafe([{ name: "../x", body: "evil" }]);
    await expectUnsafe([{ name: "ok/../../../x", body: "evil" }]);
    await nothingOutside();
  });

  it("rejects absolute paths", async () => {
    await expectUnsafe([{ name: `${outside}/x`, body: "evil" }]);
    await nothingOutside();
  });

  it("confines a parent symlink to / inside dest (chroot-style)", async () => {
    // a -> / then a/<outside>/passwd: the write lands in dest/<outside>/passwd, never in the real <outside>.
    await extractRaw(
      [
        { name: "a", type: "symlink", linkname: "/" },
        { name: `a${outside}/passwd`, body: "pwned" },
      ],
      dest,
    );
    expect(await readFile(join(dest, outside, "passwd"), "utf8")).toBe("pwned");
    await extractRaw(
      [
        { name: "b", type: "symlink", linkname: outside },
        { name: "b/passwd", body: "pwned" },
      ],
      dest,
    );
    await nothingOutside();
  });

  it("rejects a parent symlink climbing out with ..", async () => {
    await expectUnsafe([
      { name: "a", type: "symlink", linkname: "../.." },
      { name: "a/x", body: "evil" },
    ]);
    await expectUnsafe([
      { name: "s/", type: "directory" },
      { name: "s/up", type: "symlink", linkname: "../../outside" },
      { name: "s/up/passwd", body: "evil" },
    ]);
    await nothingOutside();
  });

  it("rejects hardlinks that escape or point at nothing", async () => {
    await expectUnsafe([{ name: "h", type: "link", linkname: "../../outside/passwd" }]);
    await expectUnsafe([{ name: "h", type: "link", linkname: `${outside}/passwd` }]);
    await expectUnsafe([{ name: "h", type: "link", linkname: "missing" }], "HARDLINK_TARGET_MISSING");
    // Through a symlink to an absolute outside dir: resolved inside dest, where there is no such file.
    await expectUnsafe(
      [
        { name: "l", type: "symlink", linkname: outside },
        { name: "h", type: "link", linkname: "l/passwd" },
      ],
      "HARDLINK_TARGET_MISSING",
    );
    await expectUnsafe([
      { name: "u", type: "symlink", linkname: "../../outside" },
      { name: "h", type: "link", linkname: "u/passwd" },
    ]);
    await nothingOutside();
    expect((await lstat(join(outside, "passwd"))).nlink).toBe(1);
  });

  it("with chrootNames (ADD of a local tar) resolves ../, absolute names, hardlink targets and parent links inside dest", async () => {
    const entries: RawEntry[] = [
      { name: "ok", body: "ok" },
      { name: "../x", body: "x" },
      { name: "sub/../../../y", body: "y" },
      { name: `${outside}/passwd`, body: "pwned" },
      { name: "h1", type: "link", linkname: "../../ok" },
      { name: "h2", type: "link", linkname: "/ok", mode: 0o600 },
      { name: "up", type: "symlink", linkname: "../../outside" },
      { name: "up/through", body: "t" },
      { name: "s/", type: "directory" },
      { name: "s/top", type: "symlink", linkname: "../../.." },
      { name: "s/top/z", body: "z" },
    ];
    await extractLayer(Readable.from([await rawTar(entries)]), dest, { chrootNames: true });
    expect(await readFile(join(dest, "x"), "utf8")).toBe("x");
    expect(await readFile(join(dest, "y"), "utf8")).toBe("y");
    expect(await readFile(join(dest, outside, "passwd"), "utf8")).toBe("pwned");
    expect((await lstat(join(dest, "h2"))).ino).toBe((await lstat(join(dest, "ok"))).ino);
    expect((await lstat(join(dest, "ok"))).nlink).toBe(3);
    // As Docker's untar: a link member's mode is applied to the inode it shares.
    expect((await lstat(join(dest, "ok"))).mode & 0o777).toBe(0o600);
    // A symlink climbing out stops at dest, as `..` of a chroot's root does: up -> ../../outside is dest/outside.
    expect(await readFile(join(dest, "outside/through"), "utf8")).toBe("t");
    expect(await readFile(join(dest, "z"), "utf8")).toBe("z");
    await nothingOutside();
  });

  it("rejects writing through a file used as a directory", async () => {
    await expectUnsafe(
      [
        { name: "f", body: "x" },
        { name: "f/g", body: "y" },
      ],
      "NOT_A_DIRECTORY",
    );
  });

  it("never writes through an existing symlink at the final component", async () => {
    await symlink(join(outside, "passwd"), join(dest, "target"));
    await extractRaw([{ name: "target", body: "overwritten?" }], dest);
    await nothingOutside();
    expect(await readFile(join(dest, "target"), "utf8")).toBe("overwritten?");
  });

  it("never chmods through a symlink that replaced a directory later in the layer", async () => {
    // The directory's mode is applied at the end; by then "a" is a link to a file outside dest.
    const victim = join(work, "victim");
    await writeFile(victim, "host file");
    await chmod(victim, 0o600);
    const dest = join(work, "d");
    await mkdir(dest);
    for (const entries of [
      [
        { name: "a/", type: "directory" as const, mode: 0o777 },
        { name: "a", type: "symlink" as const, linkname: victim },
      ],
      [
        { name: "p/a/", type: "directory" as const, mode: 0o777 },
        { name: "p", type: "symlink" as const, linkname: work },
      ],
    ]) {
      await extractRaw(entries, dest);
      expect((await lstat(victim)).mode & 0o7777).toBe(0o600);
      expect((await lstat(work)).mode & 0o7777).toBe(0o700);
    }
  });

  it("honours an aborted signal", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(extractLayer(Readable.from([await rawTar([{ name: "x", body: "x" }])]), dest, { signal: ac.signal })).rejects.toMatchObject({
      code: "CANCELLED",
    });
    expect(await readdir(dest)).toEqual([]);
  });
});
