// A decompression bomb in a layer: a small gzip member that expands far beyond what may be written. Loading stops
// once the decompressed bytes pass the budget (lowered here through the library option; by default the store's free
// space minus a reserve) instead of writing gigabytes before the diff_id check fails, and leaves nothing behind.
import { createGzip } from "node:zlib";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArchiveError } from "../../src/errors.js";
import { loadArchive } from "../../src/exporter/load.js";
import { openContentStore } from "../../src/store/content-store.js";
import { openImageStore } from "../../src/store/image-store.js";
import { makeTar, sha256 } from "../helpers/crafted-image.js";
import { storedBlobs } from "../helpers/store.js";

const MiB = 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsbuild-bomb-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** gzip of a layer tar holding one file of `bytes` zeros, made as a stream (never `bytes` in memory). */
async function gzipBomb(bytes: number): Promise<Buffer> {
  const pack = tar.pack();
  const gz = pack.pipe(createGzip({ level: 1 }));
  const out: Buffer[] = [];
  const done = (async () => {
    for await (const c of gz as AsyncIterable<Buffer>) out.push(c);
  })();
  const zeros = Buffer.alloc(MiB);
  await new Promise<void>((resolve, reject) => {
    const entry = pack.entry({ name: "zeros", size: bytes, mode: 0o644, mtime: new Date(0) }, (e) => (e ? reject(e) : resolve()));
    Readable.from(
      (function* () {
        for (let left = bytes; left > 0; left -= MiB) yield left >= MiB ? zeros : zeros.subarray(0, left);
      })(),
    ).pipe(entry);
  });
  pack.finalize();
  await done;
  return Buffer.concat(out);
}

describe("load: decompression bombs", () => {
  it("stops writing a layer that expands past the budget, and the store stays empty", async () => {
    const bomb = await gzipBomb(256 * MiB);
    expect(bomb.length).toBeLessThan(2 * MiB); // the ratio is the point: >100x
    const config = JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [`sha256:${"a".repeat(64)}`] } });
    const file = join(dir, "bomb.tar");
    await writeFile(
      file,
      await makeTar([
        { name: "l.tar", data: bomb },
        { name: "c.json", data: config },
        { name: "manifest.json", data: JSON.stringify([{ Config: "c.json", RepoTags: ["bomb:1"], Layers: ["l.tar"] }]) },
      ]),
    );
    const root = await mkdtemp(join(tmpdir(), "tsbuild-bomb-store-"));
    try {
      const content = openContentStore(root);
      const images = openImageStore(root);
      const t0 = performance.now();
      const err = await loadArchive(content, images, file, { maxUncompressedBytes: 16 * MiB }).then(
        () => undefined,
        (e: unknown) => e,
      );
      const ms = performance.now() - t0;
      expect(err).toBeInstanceOf(ArchiveError);
      expect((err as ArchiveError).code).toBe("LAYER_TOO_LARGE");
      expect((err as Error).message).toContain(`${file}: member l.tar expands to more than ${16 * MiB} bytes`);
      expect(ms).toBeLessThan(10_000);
      expect(await images.list()).toEqual([]);
      const blobs: string[] = await storedBlobs(content);
      expect(blobs).toEqual([]);
      expect(await readdir(join(root, "tmp")).catch(() => [])).toEqual([]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 60_000);

  it("a genuine layer within the budget loads (the budget counts all layers together)", async () => {
    const layer = await makeTar([{ name: "f", data: Buffer.alloc(3 * MiB, 1) }]);
    const config = JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [sha256(layer), sha256(layer)] } });
    const members = [
      { name: "a.tar", data: layer },
      { name: "c.json", data: config },
      { name: "manifest.json", data: JSON.stringify([{ Config: "c.json", RepoTags: ["ok:1"], Layers: ["a.tar", "a.tar"] }]) },
    ];
    const file = join(dir, "ok.tar");
    await writeFile(file, await makeTar(members));
    const root = await mkdtemp(join(tmpdir(), "tsbuild-bomb-ok-"));
    try {
      const r = await loadArchive(openContentStore(root), openImageStore(root), file, { maxUncompressedBytes: 4 * MiB });
      expect(r.map((x) => x.name)).toEqual(["docker.io/library/ok:1"]);
      // Two layers of 3 MiB members would not fit in 4 MiB together.
      const two = JSON.stringify([{ Config: "c2.json", RepoTags: ["ok:2"], Layers: ["a.tar", "b.tar"] }]);
      const file2 = join(dir, "two.tar");
      await writeFile(
        file2,
        await makeTar([
          { name: "a.tar", data: layer },
          { name: "b.tar", data: layer },
          { name: "c2.json", data: config },
          { name: "manifest.json", data: two },
        ]),
      );
      await expect(loadArchive(openContentStore(root), openImageStore(root), file2, { maxUncompressedBytes: 4 * MiB })).rejects.toMatchObject({
        code: "LAYER_TOO_LARGE",
      });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 30_000);
});
