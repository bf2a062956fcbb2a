// The stat cache: unchanged files are not re-read, changed bytes are, racy (just-written) files are never trusted, and
// entries saved over several builds and directories come back whatever order they are asked in.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lstat, mkdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createHasher } from "../../src/util/hasher.js";
import { openFileHashCache } from "../../src/context/file-hash-cache.js";
import { tempDir } from "../helpers/cli.js";
import { setTimeout as sleep } from "node:timers/promises";

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("file hash cache", () => {
  it("serves unchanged files from the cache and re-reads changed ones", async () => {
    const h = await createHasher();
    const ctx = join(dir.path, "ctx");
    const store = join(dir.path, "store");
    await mkdir(ctx, { recursive: true });
    const f = join(ctx, "a.txt");
    await writeFile(f, "one");
    const old = new Date(Date.now() - 10_000);
    await utimes(f, old, old);
    await sleep(80); // past the racy window of the ctime utimes just set
    const c1 = await openFileHashCache(store, ctx, h);
    const first = await c1.hash(f, "a.txt", await lstat(f));
    expect(c1.counters).toMatchObject({ hashed: 1, cached: 0 });
    await c1.save();

    const c2 = await openFileHashCache(store, ctx, h);
    expect(await c2.hash(f, "a.txt", await lstat(f))).toBe(first);
    expect(c2.counters).toMatchObject({ hashed: 0, cached: 1 });

    await writeFile(f, "two");
    await utimes(f, old, old); // same mtime, but ctime and content moved on
    const c3 = await openFileHashCache(store, ctx, h);
    const second = await c3.hash(f, "a.txt", await lstat(f));
    expect(second).not.toBe(first);
    expect(c3.counters.hashed).toBe(1);
  });

  it("does not trust a file changed just before it was hashed", async () => {
    const h = await createHasher();
    const ctx = join(dir.path, "racy");
    const store = join(dir.path, "store2");
    await mkdir(ctx, { recursive: true });
    const f = join(ctx, "b.txt");
    await writeFile(f, "fresh");
    const c1 = await openFileHashCache(store, ctx, h);
    await c1.hash(f, "b.txt", await lstat(f));
    await c1.save();
    const c2 = await openFileHashCache(store, ctx, h);
    await c2.hash(f, "b.txt", await lstat(f));
    expect(c2.counters.hashed).toBe(1);
  });

  it("ignores a damaged cache file", async () => {
    const h = await createHasher();
    const ctx = join(dir.path, "damaged");
    const store = join(dir.path, "store3");
    await mkdir(ctx, { recursive: true });
    const { fileHashCachePath } = await import("../../src/context/file-hash-cache.js");
    await mkdir(join(store, "cache/context"), { recursive: true });
    await writeFile(fileHashCachePath(store, h, ctx), "{not json");
    const f = join(ctx, "c.txt");
    await writeFile(f, "x");
    const c = await openFileHashCache(store, ctx, h);
    expect(await c.hash(f, "c.txt", await lstat(f))).toMatch(/^[0-9a-f]{16}$/);
  });

  it("hashes a small file synchronously as hash() does, caches it, and leaves a large one to hash()", async () => {
    const h = await createHasher();
    const ctx = join(dir.path, "sync");
    const store = join(dir.path, "store-sync");
    await mkdir(ctx, { recursive: true });
    const small = join(ctx, "s.txt");
    const large = join(ctx, "l.bin");
    await writeFile(small, "small bytes");
    await writeFile(large, Buffer.alloc((1 << 20) + 1, 7));
    const old = new Date(Date.now() - 10_000);
    await utimes(small, old, old);
    await sleep(80); // past the racy window of the ctime utimes just set
    const c1 = await openFileHashCache(store, ctx, h);
    const viaSync = c1.hashSmallSync(small, "s.txt", await lstat(small));
    expect(viaSync).toBe(h.bytes(Buffer.from("small bytes")));
    expect(c1.hashSmallSync(large, "l.bin", await lstat(large))).toBeUndefined();
    expect(c1.counters).toMatchObject({ hashed: 1, cached: 0 });
    await c1.save();
    const c2 = await openFileHashCache(store, ctx, h);
    expect(await c2.hash(small, "s.txt", await lstat(small))).toBe(viaSync);
    expect(c2.counters).toMatchObject({ hashed: 0, cached: 1 });
  });

  it("serves files named like Object properties (__proto__, constructor) from the cache, in the root and below", async () => {
    const h = await createHasher();
    const ctx = join(dir.path, "proto");
    const store = join(dir.path, "store4");
    await mkdir(join(ctx, "__proto__"), { recursive: true });
    const names = ["__proto__/__proto__", "__proto__/constructor", "constructor", "toString"];
    const old = new Date(Date.now() - 10_000);
    for (const n of names) {
      await writeFile(join(ctx, n), n);
      await utimes(join(ctx, n), old, old);
    }
    await sleep(80); // past the racy window of the ctime utimes just set
    const c1 = await openFileHashCache(store, ctx, h);
    const first = await Promise.all(names.map(async (n) => c1.hash(join(ctx, n), n, await lstat(join(ctx, n)))));
    await c1.save();
    const c2 = await openFileHashCache(store, ctx, h);
    for (const [i, n] of names.entries()) expect(c2.lookup(n, await lstat(join(ctx, n)))).toBe(first[i]);
    expect(c2.counters).toMatchObject({ hashed: 0, cached: names.length });
  });

  it("keeps entries over several saves and serves them whichever directory is asked first", async () => {
    const h = await createHasher();
    const ctx = join(dir.path, "dirs");
    const store = join(dir.path, "store5");
    const names = ["a/one two.txt", "a/x", "b/c/x", "top", "b/y"];
    await mkdir(join(ctx, "a"), { recursive: true });
    await mkdir(join(ctx, "b/c"), { recursive: true });
    const old = new Date(Date.now() - 10_000);
    for (const n of names) {
      await writeFile(join(ctx, n), `content of ${n}`);
      await utimes(join(ctx, n), old, old);
    }
    await sleep(80); // past the racy window of the ctime utimes just set
    const st = (n: string) => lstat(join(ctx, n));
    // Two builds, each hashing some files: the second's save keeps the first's entries.
    const c1 = await openFileHashCache(store, ctx, h);
    const hashes = new Map<string, string>();
    for (const n of names.slice(0, 3)) hashes.set(n, await c1.hash(join(ctx, n), n, await st(n)));
    await c1.save();
    const c2 = await openFileHashCache(store, ctx, h);
    for (const n of names.slice(2)) hashes.set(n, await c2.hash(join(ctx, n), n, await st(n)));
    expect(c2.counters).toMatchObject({ hashed: 2, cached: 1 });
    await c2.save();
    const c3 = await openFileHashCache(store, ctx, h);
    for (const n of ["b/y", "a/x", "top", "a/one two.txt", "b/c/x", "a/x"]) expect(c3.lookup(n, await st(n)), n).toBe(hashes.get(n));
    expect(new Set(hashes.values()).size).toBe(names.length);
    // A changed stat is a miss, not the old hash.
    await utimes(join(ctx, "a/x"), new Date(old.getTime() - 1000), new Date(old.getTime() - 1000));
    expect(c3.lookup("a/x", await st("a/x"))).toBeUndefined();
  });
});
