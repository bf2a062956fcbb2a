import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import tar from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { compareWalk, sortEntries, writeLayerTar } from "../../src/layer/tar-writer.js";
import { storeLayer } from "../../src/layer/store-layer.js";
import { listLayer } from "../../src/layer/extract.js";
import { openContentStore } from "../../src/store/content-store.js";
import { layerTarBytes } from "../helpers/tar-bytes.js";
import type { LayerEntry } from "../../src/layer/types.js";
import { storedBlobs } from "../helpers/store.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsbuild-tw-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rawHeaders(buf: Buffer): Promise<(tar.Header & { pax?: Record<string, string> | null })[]> {
  const ex = tar.extract();
  const out: (tar.Header & { pax?: Record<string, string> | null })[] = [];
  Readable.from([buf]).pipe(ex as unknown as Writable);
  for await (const e of ex) {
    out.push(e.header);
    for await (const _ of e) void _;
  }
  return out;
}

async function fixture(): Promise<LayerEntry[]> {
  await writeFile(join(dir, "hello"), "hello world\n");
  await writeFile(join(dir, "empty"), "");
  return [
    { path: "usr/bin/hello", type: "file", mode: 0o4755, uid: 0, gid: 0, mtime: 1000, size: 12, source: join(dir, "hello") },
    { path: "usr", type: "directory", mode: 0o755, uid: 0, gid: 0, mtime: 1000 },
    { path: "usr/bin", type: "directory", mode: 0o755, uid: 0, gid: 0, mtime: 1000 },
    { path: "usr/bin/hi", type: "symlink", mode: 0o777, uid: 0, gid: 0, mtime: 1000, linkname: "hello" },
    { path: "usr/bin/hello2", type: "hardlink", mode: 0o755, uid: 0, gid: 0, mtime: 1000, linkname: "usr/bin/hello" },
    { path: "usr/empty", type: "file", mode: 0o644, uid: 1000, gid: 1000, mtime: 1000, size: 0, source: join(dir, "empty") },
    { path: ".wh.gone", type: "file", mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 },
  ];
}

describe("writeLayerTar", () => {
  it("is deterministic: same entries → same bytes and diff_id, in any input order", async () => {
    const entries = await fixture();
    const a = await layerTarBytes(entries);
    const b = await layerTarBytes([...entries].reverse());
    expect(a.equals(b)).toBe(true);
    const store = openContentStore(join(dir, "store"));
    const l1 = await storeLayer(store, entries);
    const l2 = await storeLayer(
      store,
      (async function* () {
        yield* [...entries].reverse();
      })(),
    );
    expect(l1).toEqual(l2);
    expect(l1.diffId).toBe(`sha256:${createHash("sha256").update(a).digest("hex")}`);
    expect(l1.size).toBe(a.length);
  });

  it("a different mtime gives a different diff_id", async () => {
    const entries = await fixture();
    const store = openContentStore(join(dir, "store"));
    const l1 = await storeLayer(store, entries);
    const changed = entries.map((e) => (e.path === "usr" ? { ...e, mtime: 1001 } : e));
    const l2 = await storeLayer(store, changed);
    expect(l2.diffId).not.toBe(l1.diffId);
  });

  it("compares paths as Go's walk orders them, by UTF-8 bytes, for names beyond ASCII and around the surrogates too", () => {
    // The definition: split into components, each compared as UTF-8 bytes, a whiteout by the name it deletes first.
    const bytes = (x: string, y: string) => Buffer.compare(Buffer.from(x, "utf8"), Buffer.from(y, "utf8"));
    const walkName = (c: string) => (c.startsWith(".wh.") && c !== ".wh..wh..opq" ? c.slice(4) : c);
    const reference = (a: string, b: string): number => {
      const [pa, pb] = [a.split("/"), b.split("/")];
      for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
        const c = bytes(walkName(pa[i] as string), walkName(pb[i] as string)) || bytes(pa[i] as string, pb[i] as string);
        if (c !== 0) return c;
      }
      return pa.length - pb.length;
    };
    const parts = ["a", "b", "a-b", "a.b", "ab", "é", "\u{1F600}", "\uE000", "\uFFFD", ".wh.a", ".wh..wh..opq", ".wh.", "A", "a b"];
    let seed = 7;
    const pick = () => parts[(seed = (seed * 1103515245 + 12345) % 2147483648) % parts.length] as string;
    const paths = Array.from({ length: 300 }, () => Array.from({ length: 1 + (seed % 3) }, () => pick() + (seed % 2 ? pick() : "")).join("/"));
    for (const a of paths) for (const b of paths) expect(Math.sign(compareWalk(a, b)), `${a} vs ${b}`).toBe(Math.sign(reference(a, b)));
  });

  it("sorts in Go's walk order as BuildKit's layers are: parents first, a subtree before the next sibling, a whiteout where its name is", () => {
    const e = (path: string): LayerEntry => ({ path, type: "file", mode: 0, uid: 0, gid: 0, mtime: 0 });
    expect(sortEntries([e("a/b"), e("a-b"), e("a"), e("B"), e("é"), e("z")]).map((x) => x.path)).toEqual(["B", "a", "a/b", "a-b", "z", "é"]);
    expect(sortEntries([e("o/new"), e("o/.wh.sub"), e("o/.wh.a"), e("o"), e("o/.wh..wh..opq")]).map((x) => x.path)).toEqual([
      "o",
      "o/.wh..wh..opq",
      "o/.wh.a",
      "o/new",
      "o/.wh.sub",
    ]);
  });

  it("writes headers from the entry: dir slash, uname/gname root only for id 0 and never on a whiteout (as BuildKit), links, devices, xattrs, long names, big ids", async () => {
    const long = `${"d".repeat(120)}/${"f".repeat(150)}`;
    await writeFile(join(dir, "x"), "x");
    const entries: LayerEntry[] = [
      ...(await fixture()),
      { path: "dev/null", type: "char-device", mode: 0o666, uid: 0, gid: 0, mtime: 5, devmajor: 1, devminor: 3 },
      { path: "dev/sda", type: "block-device", mode: 0o660, uid: 0, gid: 6, mtime: 5, devmajor: 8, devminor: 0 },
      { path: "run/fifo", type: "fifo", mode: 0o600, uid: 0, gid: 0, mtime: 5 },
      {
        path: long,
        type: "file",
        mode: 0o600,
        uid: 3000000,
        gid: 3000001,
        mtime: 7,
        size: 1,
        source: join(dir, "x"),
        xattrs: { "user.b": "2", "user.a": "1" },
      },
    ];
    const headers = await rawHeaders(await layerTarBytes(entries));
    const by = new Map(headers.map((h) => [h.name, h]));
    expect(headers.map((h) => h.name)).toEqual([
      long,
      "dev/null",
      "dev/sda",
      ".wh.gone",
      "run/fifo",
      "usr/",
      "usr/bin/",
      "usr/bin/hello",
      "usr/bin/hello2",
      "usr/bin/hi",
      "usr/empty",
    ]);
    for (const h of headers) {
      const e = entries.find((x) => h.name.replace(/\/$/, "") === x.path);
      if (!e) continue;
      const whiteout = h.name.startsWith(".wh.");
      expect(h.uname).toBe(e.uid === 0 && !whiteout ? "root" : "");
      expect(h.gname).toBe(e.gid === 0 && !whiteout ? "root" : "");
    }
    expect(by.get(".wh.gone")).toMatchObject({ uname: "", gname: "" });
    expect(by.get("dev/sda")).toMatchObject({ uname: "root", gname: "" });
    expect(by.get(long)).toMatchObject({ uname: "", gname: "" });
    expect(by.get("usr/bin/hello")).toMatchObject({ type: "file", mode: 0o4755, size: 12 });
    expect(by.get("usr/bin/hello")?.mtime?.getTime()).toBe(1000_000);
    expect(by.get("usr/bin/hi")).toMatchObject({ type: "symlink", linkname: "hello" });
    expect(by.get("usr/bin/hello2")).toMatchObject({ type: "link", linkname: "usr/bin/hello" });
    expect(by.get("dev/null")).toMatchObject({ type: "character-device", devmajor: 1, devminor: 3 });
    expect(by.get("dev/sda")).toMatchObject({ type: "block-device", devmajor: 8, devminor: 0 });
    expect(by.get("run/fifo")).toMatchObject({ type: "fifo" });
    expect(by.get(long)?.pax).toMatchObject({ "SCHILY.xattr.user.a": "1", "SCHILY.xattr.user.b": "2", uid: "3000000", gid: "3000001" });
    const listed = [];
    for await (const e of listLayer(Readable.from([await layerTarBytes(entries)]))) listed.push(e);
    expect(listed.find((e) => e.path === long)).toMatchObject({ uid: 3000000, gid: 3000001, xattrs: { "user.a": "1", "user.b": "2" } });
  });

  it("keeps ids above the header's 6 octal digits (262143) in a PAX record, and ids up to it in the header alone", async () => {
    await writeFile(join(dir, "x"), "x");
    const ids = [0, 1000, 0o777777, 0o777777 + 1, 300000, 0o7777777, 0o7777777 + 1];
    const entries: LayerEntry[] = ids.map((id) => ({ path: `f${id}`, type: "file", mode: 0o644, uid: id, gid: id, mtime: 0, size: 1, source: join(dir, "x") }));
    const bytes = await layerTarBytes(entries);
    const listed = new Map<string, { uid: number; gid: number }>();
    for await (const e of listLayer(Readable.from([bytes]))) listed.set(e.path, e);
    for (const id of ids) expect(listed.get(`f${id}`), String(id)).toMatchObject({ uid: id, gid: id });
    const headers = new Map((await rawHeaders(bytes)).map((h) => [h.name, h]));
    for (const id of ids) expect(headers.get(`f${id}`)?.pax?.["uid"], String(id)).toBe(id > 0o777777 ? String(id) : undefined);
  });

  it("rejects a file whose size on disk differs from the entry, leaving nothing in the store", async () => {
    await writeFile(join(dir, "f"), "12345");
    const store = openContentStore(join(dir, "store"));
    for (const size of [3, 9]) {
      const entries: LayerEntry[] = [{ path: "f", type: "file", mode: 0o644, uid: 0, gid: 0, mtime: 0, size, source: join(dir, "f") }];
      await expect(storeLayer(store, entries)).rejects.toMatchObject({ name: "ArchiveError", code: "SIZE_CHANGED" });
    }
    const missing: LayerEntry[] = [{ path: "f", type: "file", mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 1, source: join(dir, "nope") }];
    await expect(storeLayer(store, missing)).rejects.toMatchObject({ code: "SOURCE_UNREADABLE" });
    const blobs: string[] = await storedBlobs(store);
    expect(blobs).toEqual([]);
    expect(await readdir(join(dir, "store", "tmp"))).toEqual([]);
  });

  it("writes modes exactly, 000 and special bits included (tar-stream would turn 0 into 0644/0755)", async () => {
    await writeFile(join(dir, "x"), "x");
    const entries: LayerEntry[] = [];
    for (const [i, mode] of [0o000, 0o001, 0o400, 0o4000, 0o2000, 0o1000].entries()) {
      entries.push({ path: `f${i}`, type: "file", mode, uid: 0, gid: 0, mtime: 1, size: 1, source: join(dir, "x") });
      entries.push({ path: `d${i}`, type: "directory", mode, uid: 0, gid: 0, mtime: 1 });
      entries.push({ path: `c${i}`, type: "char-device", mode, uid: 0, gid: 0, mtime: 1, devmajor: 1, devminor: 3 });
      entries.push({ path: `p${i}`, type: "fifo", mode, uid: 0, gid: 0, mtime: 1 });
    }
    const got = new Map((await rawHeaders(await layerTarBytes(entries))).map((h) => [h.name.replace(/\/$/, ""), h.mode]));
    for (const e of entries) expect(got.get(e.path), e.path).toBe(e.mode);
  });

  it("rejects unclean entry paths", async () => {
    for (const path of ["/abs", "a/../b", "./a", "a/", ""]) {
      await expect(layerTarBytes([{ path, type: "directory", mode: 0o755, uid: 0, gid: 0, mtime: 0 }])).rejects.toMatchObject({ code: "BAD_ENTRY_PATH" });
    }
  });

  it("honours an aborted signal", async () => {
    const ac = new AbortController();
    ac.abort();
    const out = new Writable({ write: (_c, _e, cb) => cb() });
    await expect(writeLayerTar(await fixture(), out, { signal: ac.signal })).rejects.toMatchObject({ code: "CANCELLED" });
  });
});
