import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { compressedLayer, storeLayer } from "../../src/layer/store-layer.js";
import { openContentStore } from "../../src/store/content-store.js";
import { MediaType, type Digest } from "../../src/image/types.js";
import type { LayerEntry } from "../../src/layer/types.js";
import { blobBytes, deleteBlob } from "../helpers/store.js";
import { layerTarBytes } from "../helpers/tar-bytes.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsbuild-sl-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function entries(): Promise<LayerEntry[]> {
  await writeFile(join(dir, "data"), "some layer content\n".repeat(1000));
  return [
    { path: "app", type: "directory", mode: 0o755, uid: 0, gid: 0, mtime: 10 },
    { path: "app/data", type: "file", mode: 0o644, uid: 0, gid: 0, mtime: 10, size: 19000, source: join(dir, "data") },
  ];
}

describe("storeLayer", () => {
  it("stores the same bytes as the in-memory writer over many batches (its batch buffers are reused once written)", async () => {
    // Files of several sizes around a batch (1 MiB): in the batch, of their own, and across batches; distinct bytes
    // per file, so a batch overwritten before it was written would show.
    const list: LayerEntry[] = [];
    for (const [i, size] of [100, (1 << 20) - 600, 1 << 20, 3000, (1 << 20) + 1, 5 << 20, 7, 2 << 20].entries()) {
      const file = join(dir, `f${i}`);
      await writeFile(file, Buffer.alloc(size, 0x41 + i));
      list.push({ path: `f${i}`, type: "file", mode: 0o644, uid: 0, gid: 0, mtime: 1, size, source: file });
    }
    const store = openContentStore(join(dir, "store"));
    const { diffId } = await storeLayer(store, list);
    const [stored, inMemory] = [await blobBytes(store, diffId), await layerTarBytes(list)];
    // Compared as a whole (toEqual walks 10 MB byte by byte).
    expect(stored.length).toBe(inMemory.length);
    expect(stored.equals(inMemory)).toBe(true);
  });
});

describe("compressedLayer", () => {
  it("gzips a stored layer once, caches the mapping, and recomputes when the blob is gone", async () => {
    const store = openContentStore(join(dir, "store"));
    const { diffId } = await storeLayer(store, await entries());
    const d1 = await compressedLayer(store, diffId);
    expect(d1.mediaType).toBe(MediaType.OciLayerGzip);
    expect(d1.digest).not.toBe(diffId);
    expect(gunzipSync(await blobBytes(store, d1.digest)).equals(await blobBytes(store, diffId))).toBe(true);
    const mapping = join(dir, "store", "compressed", "gzip", `${diffId.slice(7)}.json`);
    expect(JSON.parse(await readFile(mapping, "utf8"))).toEqual({ digest: d1.digest, size: d1.size });

    // Served from the cache: a different level would give different bytes if it recompressed.
    expect(await compressedLayer(store, diffId, { level: 1 })).toEqual(d1);

    await deleteBlob(store, d1.digest);
    expect(await compressedLayer(store, diffId)).toEqual(d1);
    expect(await store.has(d1.digest)).toBe(true);

    await writeFile(mapping, "{garbage");
    expect(await compressedLayer(store, diffId)).toEqual(d1);
  });

  it("is deterministic across stores", async () => {
    const a = openContentStore(join(dir, "a"));
    const b = openContentStore(join(dir, "b"));
    const la = await storeLayer(a, await entries());
    const lb = await storeLayer(b, await entries());
    expect(la).toEqual(lb);
    expect(await compressedLayer(a, la.diffId)).toEqual(await compressedLayer(b, lb.diffId));
  });

  it("fails with BLOB_NOT_FOUND for an unknown layer", async () => {
    const store = openContentStore(join(dir, "store"));
    await expect(compressedLayer(store, `sha256:${"0".repeat(64)}` as Digest)).rejects.toMatchObject({ code: "BLOB_NOT_FOUND" });
  });
});
