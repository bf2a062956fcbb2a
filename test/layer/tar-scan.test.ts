// The fast tar scan names entries as the extractor does and digests each entry's bytes: the same entry in two layers
// gives the same digest, any difference (content, mode, mtime, owner, xattr) another; what it does not know for sure
// (GNU long names, a truncated tar, a bad checksum) gives undefined, never a wrong answer.
import { Readable } from "node:stream";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listLayer } from "../../src/layer/extract.js";
import { scanTarEntries } from "../../src/layer/tar-scan.js";
import type { LayerEntry } from "../../src/layer/types.js";
import { layerTarBytes, tarBytes } from "../helpers/tar-bytes.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsbuild-tarscan-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function put(bytes: Buffer): Promise<string> {
  const f = join(dir, `t${n++}.tar`);
  await writeFile(f, bytes);
  return f;
}

const long = `${"d".repeat(120)}/${"é".repeat(70)}.txt`;
function entries(over: Partial<Record<string, Partial<LayerEntry>>> = {}): LayerEntry[] {
  const base: LayerEntry[] = [
    { path: "app", type: "directory", mode: 0o755, uid: 0, gid: 0, mtime: 0 },
    { path: "app/a.txt", type: "file", mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 },
    { path: "app/link", type: "symlink", mode: 0o777, uid: 0, gid: 0, mtime: 0, linkname: "a.txt" },
    { path: "app/hard", type: "hardlink", mode: 0o644, uid: 0, gid: 0, mtime: 0, linkname: "app/a.txt" },
    { path: "app/big-ids", type: "directory", mode: 0o700, uid: 3_000_000, gid: 3_000_000, mtime: 5 },
    { path: `app/${long}`, type: "file", mode: 0o600, uid: 1, gid: 2, mtime: 7, size: 0, xattrs: { "user.x": "1" } },
  ];
  return base.map((e) => ({ ...e, ...(over[e.path] ?? {}) }));
}

async function layer(list: LayerEntry[], files: Record<string, string> = {}): Promise<string> {
  for (const e of list)
    if (e.type === "file") {
      const src = join(dir, `src${n++}`);
      const body = files[e.path] ?? `body of ${e.path}\n`;
      await writeFile(src, body);
      e.source = src;
      e.size = Buffer.byteLength(body);
    }
  return put(await layerTarBytes(list));
}

describe("scanTarEntries", () => {
  it("names every entry as the extractor's listing does, PAX names included", async () => {
    const f = await layer(entries());
    const scanned = await scanTarEntries(f);
    const listed: Pick<LayerEntry, "path" | "type">[] = [];
    for await (const e of listLayer(Readable.from([await readFile(f)]))) listed.push({ path: e.path, type: e.type });
    expect(scanned?.map(({ path, type }) => ({ path, type }))).toEqual(listed);
    expect(listed.map((e) => e.path)).toContain(`app/${long}`);
  });

  it("gives an entry the same digest in two layers, and another for any difference", async () => {
    const a = (await scanTarEntries(await layer(entries()))) ?? [];
    const same = (await scanTarEntries(await layer(entries()))) ?? [];
    expect(same.map((e) => e.digest)).toEqual(a.map((e) => e.digest));
    const differs = async (over: Partial<Record<string, Partial<LayerEntry>>>, files: Record<string, string> = {}) => {
      const b = (await scanTarEntries(await layer(entries(over), files))) ?? [];
      return b.filter((e, i) => e.digest !== a[i]?.digest).map((e) => e.path);
    };
    expect(await differs({}, { "app/a.txt": "body of app/a.txT\n" })).toEqual(["app/a.txt"]);
    expect(await differs({ "app/big-ids": { mode: 0o750 } })).toEqual(["app/big-ids"]);
    expect(await differs({ "app/big-ids": { mtime: 6 } })).toEqual(["app/big-ids"]);
    expect(await differs({ "app/big-ids": { uid: 3_000_001 } })).toEqual(["app/big-ids"]);
    expect(await differs({ [`app/${long}`]: { xattrs: { "user.x": "2" } } })).toEqual([`app/${long}`]);
  });

  it("answers undefined for GNU long names, a truncated tar and a bad checksum", async () => {
    const gnu = await tarBytes([{ name: "x".repeat(150), body: "a" }]);
    // tar-stream writes a long name as PAX; make it GNU: an 'L' header holding the name, then the entry.
    const name = Buffer.from(`${"x".repeat(150)}\0`);
    const hdr = Buffer.from(gnu.subarray(0, 512));
    hdr.fill(0, 0, 100);
    hdr.write("././@LongLink", 0, "latin1");
    hdr[156] = "L".charCodeAt(0);
    hdr.write(name.length.toString(8).padStart(11, "0"), 124, "latin1");
    hdr.fill(32, 148, 156);
    let sum = 0;
    for (const b of hdr) sum += b;
    hdr.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    const longLink = Buffer.concat([hdr, name, Buffer.alloc(512 - name.length)]);
    expect(await scanTarEntries(await put(Buffer.concat([longLink, gnu])))).toBeUndefined();

    const ok = await layerTarBytes(entries().filter((e) => e.type === "directory"));
    expect(await scanTarEntries(await put(ok))).toHaveLength(2);
    expect(await scanTarEntries(await put(ok.subarray(0, 700)))).toBeUndefined();
    const bad = Buffer.from(ok);
    bad[10] = (bad[10] as number) ^ 1;
    expect(await scanTarEntries(await put(bad))).toBeUndefined();
  });
});
