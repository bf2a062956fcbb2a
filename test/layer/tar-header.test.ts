// The layer tar writer encodes headers itself; its bytes must stay exactly what tar-stream's pack wrote before
// (same entries, same diff_id). tar-stream is the oracle here: every kind of header, written both ways, compared.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tar, { type Header } from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeHeader } from "../../src/layer/tar-header.js";
import { sortEntries, TYPE_BITS } from "../../src/layer/tar-writer.js";
import type { EntryType, LayerEntry } from "../../src/layer/types.js";
import { layerTarBytes } from "../helpers/tar-bytes.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsbuild-th-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const TAR_TYPE: Record<EntryType, Header["type"]> = {
  file: "file",
  directory: "directory",
  symlink: "symlink",
  hardlink: "link",
  "char-device": "character-device",
  "block-device": "block-device",
  fifo: "fifo",
};

/** The writer as it was (tar-stream's pack, headers built as tar-writer.ts built them): entries already sorted. */
async function viaTarStream(entries: LayerEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const pax: Record<string, string> = {};
    const h: Partial<Header> & { name: string; pax?: Record<string, string> } = {
      name: e.type === "directory" ? `${e.path}/` : e.path,
      type: TAR_TYPE[e.type],
      mode: TYPE_BITS[e.type] | (e.mode & 0o7777),
      uid: e.uid,
      gid: e.gid,
      mtime: new Date(Math.max(0, Math.floor(e.mtime)) * 1000),
      uname: e.uid === 0 ? "root" : "",
      gname: e.gid === 0 ? "root" : "",
      size: e.type === "file" ? (e.size ?? 0) : 0,
    };
    // tar-stream writes ids in 6 octal digits: a larger one needs its PAX record (tar-writer's rule).
    if (e.uid > 0o777777) pax["uid"] = String(e.uid);
    if (e.gid > 0o777777) pax["gid"] = String(e.gid);
    if (e.linkname !== undefined) h.linkname = e.linkname;
    if (e.type === "char-device" || e.type === "block-device") {
      h.devmajor = e.devmajor ?? 0;
      h.devminor = e.devminor ?? 0;
    }
    for (const k of Object.keys(e.xattrs ?? {}).sort()) pax[`SCHILY.xattr.${k}`] = e.xattrs?.[k] ?? "";
    if (Object.keys(pax).length > 0) h.pax = pax;
    const body = e.type === "file" && e.source ? readFileSync(e.source) : undefined;
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry(h as Header, (err) => (err ? reject(err) : resolve()));
      if (body) sink.write(body);
      sink.end(null);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

describe("tar headers", () => {
  it("are byte for byte tar-stream's for every kind of entry, name length, id and time", async () => {
    const sizes = [0, 1, 511, 512, 513, 4096, 70_000, (1 << 20) + 3];
    const sources: string[] = [];
    for (const [i, n] of sizes.entries()) {
      const p = join(dir, `src${i}`);
      await writeFile(p, Buffer.alloc(n, i + 1));
      sources.push(p);
    }
    const entries: LayerEntry[] = [];
    const names = [
      "a",
      "x".repeat(99),
      "x".repeat(100),
      "x".repeat(101),
      `${"d".repeat(150)}/${"f".repeat(100)}`,
      `${"d".repeat(160)}/f`,
      `${"a/".repeat(80)}leaf`,
      "ünïcødé/файл",
      "sp ace/tab\there",
    ];
    for (const [i, name] of names.entries()) {
      const base = { uid: [0, 1, 1000, 0o777777, 0o1000000, 3000000][i % 6] as number, gid: [0, 5, 0o7777777 + 1][i % 3] as number };
      const mtime = [0, 1, 1_700_000_000.9, 2 ** 31 + 5, -3][i % 5] as number;
      entries.push({ path: `dir${i}/${name}`, type: "directory", mode: 0o755, ...base, mtime });
      const s = i % sizes.length;
      entries.push({
        path: `file${i}/${name}`,
        type: "file",
        mode: [0o644, 0o4755, 0, 0o7777][i % 4] as number,
        ...base,
        mtime,
        size: sizes[s] as number,
        source: sources[s] as string,
      });
      entries.push({ path: `link${i}/${name}`, type: "symlink", mode: 0o777, ...base, mtime, linkname: i % 2 ? "t".repeat(100 + i) : `target/${name}` });
      entries.push({ path: `hard${i}/${name}`, type: "hardlink", mode: 0o644, ...base, mtime, linkname: `file${i}/${name}` });
      entries.push({ path: `dev${i}/${name}`, type: i % 2 ? "char-device" : "block-device", mode: 0o600, ...base, mtime, devmajor: i, devminor: 300 + i });
      entries.push({ path: `fifo${i}/${name}`, type: "fifo", mode: 0o600, ...base, mtime });
      entries.push({
        path: `xattr${i}/${name}`,
        type: "file",
        mode: 0o644,
        ...base,
        mtime,
        size: 0,
        xattrs: { "security.capability": "\u0001\u0000\u0000\u0002", "user.b": "2", "user.a": "é" },
      });
    }
    const sorted = sortEntries(entries);
    const want = await viaTarStream(sorted);
    const got = await layerTarBytes(sorted);
    expect(got.length).toBe(want.length);
    expect(got.equals(want)).toBe(true);
  });

  it("writes a size of 8 GiB or more in base-256, as tar-stream does", () => {
    const h = encodeHeader({ name: "big", type: "file", mode: 0o100644, uid: 0, gid: 0, mtime: 0, size: 2 ** 33 + 7, uname: "root", gname: "root" });
    expect(h[124]).toBe(0x80);
    expect(h.readUIntBE(130, 6)).toBe(2 ** 33 + 7);
  });
});
