import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openContentStore } from "../../src/store/content-store.js";
import { StoreError } from "../../src/errors.js";
import type { Digest } from "../../src/image/types.js";
import { storedBlobs } from "../helpers/store.js";

const sha = (b: Buffer | string): Digest => `sha256:${createHash("sha256").update(b).digest("hex")}`;

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "tsbuild-cs-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe("content store", () => {
  it("writes a streamed blob under blobs/sha256 and reads it back", async () => {
    const cs = openContentStore(root);
    const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const w = cs.write();
    await pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), w.stream);
    const { digest, size } = await w.commit();
    expect(digest).toBe(sha(data));
    expect(size).toBe(data.length);
    expect(cs.path(digest)).toBe(join(root, "blobs", "sha256", digest.slice(7)));
    expect(await cs.has(digest)).toBe(true);
    expect(await cs.size(digest)).toBe(data.length);
    expect((await readAll(cs.read(digest))).equals(data)).toBe(true);
    expect(await readdir(join(root, "tmp"))).toEqual([]);
    expect(await storedBlobs(root)).toEqual([digest]);
  });

  it("verifies the expected digest and removes the temp file on mismatch", async () => {
    const cs = openContentStore(root);
    const w = cs.write(sha("something else"));
    await pipeline(Readable.from([Buffer.from("hello")]), w.stream);
    await expect(w.commit()).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
    expect(await cs.has(sha("hello"))).toBe(false);
    expect(await readdir(join(root, "tmp"))).toEqual([]);

    const ok = cs.write(sha("hello"));
    await pipeline(Readable.from([Buffer.from("hello")]), ok.stream);
    expect((await ok.commit()).digest).toBe(sha("hello"));
  });

  it("commit is idempotent when the blob already exists", async () => {
    const cs = openContentStore(root);
    const a = await cs.putBytes("same");
    const w = cs.write();
    w.stream.end("same");
    expect(await w.commit()).toEqual(a);
    expect(await readdir(join(root, "tmp"))).toEqual([]);
  });

  it("20 concurrent writers of the same blob all succeed and leave one intact blob", async () => {
    const cs = openContentStore(root);
    const data = Buffer.alloc(512 * 1024, 3);
    const results = await Promise.all(
      Array.from({ length: 20 }, async () => {
        // Separate store handles, as separate processes would have.
        const w = openContentStore(root).write(sha(data));
        await pipeline(Readable.from([data.subarray(0, 100000), data.subarray(100000)]), w.stream);
        return w.commit();
      }),
    );
    for (const r of results) expect(r).toEqual({ digest: sha(data), size: data.length });
    expect((await readAll(cs.read(sha(data)))).equals(data)).toBe(true);
    expect(await readdir(join(root, "tmp"))).toEqual([]);
  });

  it("abort drops the temp file", async () => {
    const cs = openContentStore(root);
    const w = cs.write();
    w.stream.write("partial");
    await w.abort();
    expect(await readdir(join(root, "tmp"))).toEqual([]);
  });

  it("read of a missing blob errors with BLOB_NOT_FOUND", async () => {
    const cs = openContentStore(root);
    const d = sha("absent");
    const err = await readAll(cs.read(d)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ code: "BLOB_NOT_FOUND" });
    await expect(cs.readJson(d)).rejects.toMatchObject({ code: "BLOB_NOT_FOUND" });
    expect(await cs.size(d)).toBeUndefined();
    expect(await cs.has(d)).toBe(false);
  });

  it("readJson parses and detects corruption", async () => {
    const cs = openContentStore(root);
    const { digest } = await cs.putBytes(JSON.stringify({ a: 1 }));
    expect(await cs.readJson<{ a: number }>(digest)).toEqual({ a: 1 });
    await writeFile(cs.path(digest), "tampered");
    await expect(cs.readJson(digest)).rejects.toMatchObject({ code: "BLOB_CORRUPT" });
  });

  it("putBytes checks the expected digest", async () => {
    const cs = openContentStore(root);
    await expect(cs.putBytes("x", sha("y"))).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
    expect(await cs.putBytes(new Uint8Array([1, 2, 3]))).toEqual({ digest: sha(Buffer.from([1, 2, 3])), size: 3 });
  });

  it("rejects malformed digests instead of building paths from them", () => {
    const cs = openContentStore(root);
    expect(() => cs.path("sha256:../../etc/passwd" as Digest)).toThrow(StoreError);
  });
});
