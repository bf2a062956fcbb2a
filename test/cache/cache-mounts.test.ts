// Cache mount archives: what archiveCacheMounts writes restores to the same tree (links, hard links, modes, owners),
// and restoreCacheMount treats an imported tar as hostile: nothing outside the new directory, no device nodes, a
// size budget checked before the download, a digest that must match, and never over a directory the store has.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chmod, chown, link, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { archiveCacheMounts, restoreCacheMount } from "../../src/cache/cache-mounts.js";
import type { CacheMountEntry } from "../../src/cache/cache-manifest.js";
import { cacheSource, type CacheSource } from "../../src/cache/cache-source.js";
import { isTsbuildError } from "../../src/errors.js";
import type { Digest } from "../../src/image/types.js";
import { openContentStore } from "../../src/store/content-store.js";
import { storeLayout } from "../../src/store/layout.js";
import type { ContentStore } from "../../src/store/types.js";
import { tempDir } from "../helpers/cli.js";
import { tarBytes, type TarMember } from "../helpers/tar-bytes.js";

let work: { path: string; cleanup(): Promise<void> };
let n = 0;
const signal = new AbortController().signal;

beforeEach(async () => {
  work = await tempDir("tsbuild-cmounts-");
});
afterEach(async () => {
  await work.cleanup();
});

function store(): { root: string; content: ContentStore } {
  const root = join(work.path, `store-${++n}`);
  return { root, content: openContentStore(root) };
}

/** A cache source holding one mount `id` whose tar is `bytes` (recorded under `digest`, default their own). */
function sourceOf(id: string, bytes: Buffer, opts: { digest?: Digest; stream?: boolean } = {}): CacheSource & { fetched: number } {
  const digest = opts.digest ?? (`sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest);
  const entry: CacheMountEntry = { id, sharing: "shared", uid: 0, gid: 0, mode: 0o755, blob: { digest, size: bytes.length }, created: "2026-12-01T00:00:00Z" };
  const src = cacheSource(
    "type=local,src=/test",
    { v: 1, steps: [], images: [], mounts: [entry] },
    async (blob, content) => {
      out.fetched++;
      const w = content.write(blob.digest);
      w.stream.end(bytes);
      try {
        await w.commit();
      } catch (e) {
        await w.abort();
        throw e;
      }
    },
    opts.stream
      ? () => {
          out.fetched++;
          return Readable.from([bytes]);
        }
      : undefined,
  );
  const out = { ...src, fetched: 0 };
  return out;
}

async function restore(s: { root: string; content: ContentStore }, src: CacheSource, id: string, limit?: number) {
  const dir = storeLayout(s.root).cacheMount(id);
  return { dir, result: await restoreCacheMount(s.root, s.content, [src], id, dir, { signal, ...(limit !== undefined ? { limit } : {}) }) };
}

const absent = (p: string) =>
  lstat(p).then(
    () => false,
    () => true,
  );

describe("archive and restore", () => {
  it("a restored cache mount is the tree that was archived: files, dirs, symlinks, hard links, fifos, owners and modes", async () => {
    const a = store();
    const dir = storeLayout(a.root).cacheMount("npm");
    await mkdir(join(dir, "pkgs/deep"), { recursive: true });
    await writeFile(join(dir, "pkgs/a.tgz"), "aaa");
    await link(join(dir, "pkgs/a.tgz"), join(dir, "pkgs/deep/a-again.tgz"));
    await symlink("../pkgs/a.tgz", join(dir, "pkgs/deep/latest"));
    await writeFile(join(dir, "secret"), "s");
    await chmod(join(dir, "secret"), 0o600);
    await chown(join(dir, "secret"), 1234, 5678);
    execFileSync("mkfifo", [join(dir, "pipe")]);
    await chmod(dir, 0o750);
    await chown(dir, 1000, 1001);
    const [entry] = await archiveCacheMounts(
      a.root,
      a.content,
      [
        { id: "npm", sharing: "locked" },
        { id: "never-used", sharing: "shared" },
      ],
      { signal },
    );
    expect(entry).toMatchObject({ id: "npm", sharing: "locked", uid: 1000, gid: 1001, mode: 0o750 });

    const b = store();
    const src = cacheSource("test", { v: 1, steps: [], images: [], mounts: [entry as CacheMountEntry] }, async (blob, content) => {
      const w = content.write(blob.digest);
      a.content.read(blob.digest).pipe(w.stream);
      await new Promise((r) => w.stream.on("finish", r));
      await w.commit();
    });
    const { dir: got, result } = await restore(b, src, "npm");
    expect(result?.entry.id).toBe("npm");
    expect((await readdir(got)).sort()).toEqual(["pipe", "pkgs", "secret"]);
    expect(await readFile(join(got, "pkgs/deep/a-again.tgz"), "utf8")).toBe("aaa");
    expect((await lstat(join(got, "pkgs/deep/a-again.tgz"))).ino).toBe((await lstat(join(got, "pkgs/a.tgz"))).ino);
    expect(await readlink(join(got, "pkgs/deep/latest"))).toBe("../pkgs/a.tgz");
    expect((await lstat(join(got, "pipe"))).isFIFO()).toBe(true);
    const secret = await lstat(join(got, "secret"));
    expect([secret.uid, secret.gid, secret.mode & 0o7777]).toEqual([1234, 5678, 0o600]);
    const root = await lstat(got);
    expect([root.uid, root.gid, root.mode & 0o7777]).toEqual([1000, 1001, 0o750]);
    // Nothing left in tmp/ by the restore.
    expect(await readdir(storeLayout(b.root).tmpDir).catch(() => [])).toEqual([]);
  });

  it("a cache mount that cannot be archived (the disk is full) is reported and left out; the others still export", async () => {
    const a = store();
    const full = join(work.path, "full");
    await mkdir(full);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tsbuild-test-full", full]);
    try {
      const big = storeLayout(a.root).cacheMount("big");
      const small = storeLayout(a.root).cacheMount("small");
      await mkdir(big, { recursive: true });
      await mkdir(small, { recursive: true });
      await writeFile(join(big, "blob"), Buffer.alloc(2 * 1024 * 1024, 1));
      await writeFile(join(small, "f"), "small");
      const errors: string[] = [];
      const got = await archiveCacheMounts(
        a.root,
        openContentStore(full),
        [
          { id: "big", sharing: "shared" },
          { id: "small", sharing: "shared" },
        ],
        { signal, onError: (id) => errors.push(id) },
      );
      expect(errors).toEqual(["big"]);
      expect(got.map((e) => e.id)).toEqual(["small"]);
    } finally {
      execFileSync("umount", [full]);
    }
  });

  it("a directory the store already has is kept, and nothing is downloaded", async () => {
    const s = store();
    const src = sourceOf("npm", await tarBytes([{ name: "imported", body: "x" }]));
    const dir = storeLayout(s.root).cacheMount("npm");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "mine"), "m");
    expect((await restore(s, src, "npm")).result).toBeUndefined();
    expect(await readdir(dir)).toEqual(["mine"]);
    expect(src.fetched).toBe(0);
    expect((await restore(s, src, "other-id")).result).toBeUndefined();
  });
});

describe("hostile cache mount tars", () => {
  let outside: string;
  beforeEach(async () => {
    outside = join(work.path, "outside");
    await mkdir(outside);
  });

  it.each<[string, () => TarMember[]]>([
    ["a `..` name", () => [{ name: "../../../outside/escaped", body: "x" }]],
    ["an absolute name", () => [{ name: join(outside, "escaped"), body: "x" }]],
    [
      "a member below a symlink that points out",
      () => [
        { name: "link", type: "symlink", linkname: outside },
        { name: "link/escaped", body: "x" },
      ],
    ],
    ["a hard link to a file outside", () => [{ name: "hl", type: "link", linkname: "../../../outside/victim" }]],
  ])("%s is refused: nothing is written outside and no directory appears", async (_what, members) => {
    await writeFile(join(outside, "victim"), "v");
    const s = store();
    await expect(restore(s, sourceOf("x", await tarBytes(members())), "x")).rejects.toMatchObject({ code: "UNSAFE_PATH" });
    expect(await absent(storeLayout(s.root).cacheMount("x"))).toBe(true);
    expect((await readdir(outside)).sort()).toEqual(["victim"]);
    expect(await readdir(storeLayout(s.root).tmpDir)).toEqual([]);
  });

  it("device nodes are left out and counted; the rest is restored", async () => {
    const s = store();
    const tar = await tarBytes([
      { name: "null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "disk", type: "block-device", devmajor: 8, devminor: 0, mode: 0o666 },
      { name: "ok", body: "fine" },
    ]);
    const { dir, result } = await restore(s, sourceOf("d", tar), "d");
    expect(result?.skippedDevices).toBe(2);
    expect(await readdir(dir)).toEqual(["ok"]);
  });

  it("a tar larger than the budget is refused before it is downloaded", async () => {
    const s = store();
    const src = sourceOf("big", await tarBytes([{ name: "blob", body: Buffer.alloc(64 * 1024) }]));
    await expect(restore(s, src, "big", 64 * 1024)).rejects.toMatchObject({ code: "CACHE_MOUNT_TOO_LARGE" });
    expect(src.fetched).toBe(0);
    expect(await absent(storeLayout(s.root).cacheMount("big"))).toBe(true);
  });

  it.each([false, true])("a tar whose bytes do not match the recorded digest is never put in place (streamed: %s)", async (stream) => {
    const s = store();
    const wrong = `sha256:${"0".repeat(64)}` as Digest;
    const src = sourceOf("bad", await tarBytes([{ name: "f", body: "x" }]), { digest: wrong, stream });
    await expect(restore(s, src, "bad")).rejects.toMatchObject({ code: expect.stringMatching(/DIGEST|CORRUPT|BAD_CACHE/) });
    expect(await absent(storeLayout(s.root).cacheMount("bad"))).toBe(true);
    expect(await readdir(storeLayout(s.root).tmpDir)).toEqual([]);
  });

  it.each([false, true])("bytes that are no tar (with the right digest) are an error of tsbuild's, not a crash (streamed: %s)", async (stream) => {
    const s = store();
    const src = sourceOf("junk", Buffer.alloc(4096, "junk-bytes "), { stream });
    const err = await restore(s, src, "junk").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isTsbuildError(err), String(err)).toBe(true);
    expect(await absent(storeLayout(s.root).cacheMount("junk"))).toBe(true);
  });

  it("a streamed tar is unpacked without a copy in the store", async () => {
    const s = store();
    const src = sourceOf("st", await tarBytes([{ name: "f", body: "streamed" }]), { stream: true });
    const { dir, result } = await restore(s, src, "st");
    expect(result?.entry.id).toBe("st");
    expect(await readFile(join(dir, "f"), "utf8")).toBe("streamed");
    expect(await readdir(storeLayout(s.root).blobsDir).catch(() => [])).toEqual([]);
  });
});
