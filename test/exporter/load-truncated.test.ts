// Truncated, corrupt and odd archives: `load` fails with an ArchiveError naming the file (never a crash or a hang),
// and the store gains nothing (no image, no blob, no temp file). Some run as a real process: a crash there is an
// uncaught exception with a stack trace, which the in-process runner would not show the same way.
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArchiveError } from "../../src/errors.js";
import { loadArchive } from "../../src/exporter/load.js";
import { openContentStore } from "../../src/store/content-store.js";
import { openImageStore } from "../../src/store/image-store.js";
import { tsbuildProcess } from "../helpers/cli.js";
import { makeTar, sha256 } from "../helpers/crafted-image.js";
import { storedBlobs } from "../helpers/store.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsbuild-trunc-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A docker-archive whose one layer member holds `stored` (which should decompress to `layer`). */
async function archiveWithLayer(stored: Buffer, layer: Buffer): Promise<Buffer> {
  const config = JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [sha256(layer)] } });
  return makeTar([
    { name: "l.tar", data: stored },
    { name: "c.json", data: config },
    { name: "manifest.json", data: JSON.stringify([{ Config: "c.json", RepoTags: ["t:1"], Layers: ["l.tar"] }]) },
  ]);
}

async function bigLayer(): Promise<Buffer> {
  return makeTar([
    { name: "a", data: Buffer.alloc(300_000, 7) },
    { name: "b", data: "hello" },
  ]);
}

async function expectArchiveError(file: string, code: string, message: RegExp): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "tsbuild-trunc-store-"));
  try {
    const content = openContentStore(root);
    const images = openImageStore(root);
    const err = await loadArchive(content, images, file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ArchiveError);
    expect((err as ArchiveError).code).toBe(code);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(message);
    expect(await images.list()).toEqual([]);
    const blobs: string[] = await storedBlobs(content);
    expect(blobs).toEqual([]);
    expect(await readdir(join(root, "tmp")).catch(() => [])).toEqual([]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function put(name: string, data: Buffer): Promise<string> {
  const f = join(dir, name);
  await writeFile(f, data);
  return f;
}

describe("load: truncated and corrupt archives", () => {
  it("a layer tar cut inside an entry's data (used to crash with an uncaught 'Unexpected end of data')", async () => {
    const layer = await bigLayer();
    await expectArchiveError(
      await put("inner-cut.tar", await archiveWithLayer(layer.subarray(0, 1000), layer)),
      "LAYER_NOT_TAR",
      /l\.tar.*not a tar archive.*Unexpected end/,
    );
  });

  it("the same as a real process: an error message, no stack trace, no temp file left", async () => {
    const layer = await bigLayer();
    const file = await put("inner-cut-cli.tar", await archiveWithLayer(layer.subarray(0, 1000), layer));
    const root = join(dir, "cli-store");
    const res = await tsbuildProcess(["load", "-i", file, "--root", root]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^error: .*inner-cut-cli\.tar: .*not a tar archive.*\[LAYER_NOT_TAR\]/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(await readdir(join(root, "tmp")).catch(() => [])).toEqual([]);
  });

  it("a layer tar cut inside a header", async () => {
    const layer = await bigLayer();
    await expectArchiveError(await put("inner-hdr.tar", await archiveWithLayer(layer.subarray(0, 300), layer)), "LAYER_NOT_TAR", /not a tar archive/);
  });

  it("a truncated gzip layer", async () => {
    const layer = await bigLayer();
    const gz = gzipSync(layer);
    await expectArchiveError(
      await put("gz-cut.tar", await archiveWithLayer(gz.subarray(0, gz.length >> 1), layer)),
      "CORRUPT_BLOB",
      /member l\.tar cannot be read as gzip/,
    );
  });

  it("a truncated xz layer names the member", async () => {
    const layer = await bigLayer();
    const xz = execFileSync("xz", ["-c"], { input: layer });
    await expectArchiveError(
      await put("xz-cut.tar", await archiveWithLayer(xz.subarray(0, xz.length >> 1), layer)),
      "CORRUPT_BLOB",
      /member l\.tar cannot be read as xz/,
    );
  });

  it("an archive cut inside the nested layer blob", async () => {
    const layer = await bigLayer();
    const full = await archiveWithLayer(layer, layer);
    await expectArchiveError(await put("outer-in-layer.tar", full.subarray(0, 150_000)), "TRUNCATED", /truncated/);
  });

  it("an archive cut inside manifest.json, and one cut exactly at a member boundary", async () => {
    const layer = await bigLayer();
    const full = await archiveWithLayer(layer, layer);
    await expectArchiveError(await put("outer-in-manifest.tar", full.subarray(0, full.length - 1100)), "TRUNCATED", /truncated/);
    // Cut before manifest.json's header: every member read is whole, but the end-of-archive marker is missing.
    const boundary = full.length - 1024 - 1024; // end marker, manifest.json's data block and header
    await expectArchiveError(await put("outer-boundary.tar", full.subarray(0, boundary)), "TRUNCATED", /end-of-archive marker/);
  });

  it("a truncated xz-compressed archive", async () => {
    const layer = await bigLayer();
    const xz = execFileSync("xz", ["-c"], { input: await archiveWithLayer(layer, layer) });
    const file = await put("whole-xz-cut.tar.xz", xz.subarray(0, xz.length >> 1));
    // Whether xz's failure reaches the layer member's stream or the archive's reader first is timing (about one load
    // in fifteen went the member's way and was reported as a corrupt blob), so load it enough times to see both.
    for (let i = 0; i < 40; i++) await expectArchiveError(file, "TRUNCATED", /cannot be decompressed \(xz\)/);
  }, 20_000);

  it("a zero-byte file, random bytes, a directory and a FIFO (which must not hang)", async () => {
    await expectArchiveError(await put("zero.tar", Buffer.alloc(0)), "EMPTY_ARCHIVE", /empty/);
    const random = Buffer.alloc(200_000);
    for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24;
    await expectArchiveError(await put("random.tar", random), "NOT_A_TAR", /not a tar archive/);
    const d = join(dir, "a-dir.tar");
    await mkdir(d);
    await expectArchiveError(d, "NOT_A_FILE", /not a regular file \(a directory\)/);
    const fifo = join(dir, "fifo.tar");
    execFileSync("mkfifo", [fifo]);
    await expectArchiveError(fifo, "NOT_A_FILE", /not a regular file \(a named pipe\)/);
  }, 10_000);
});
