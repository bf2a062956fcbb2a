import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decompressStream, detectCompression } from "../../src/layer/compression.js";
import { EnvironmentError } from "../../src/errors.js";
import { hasTool } from "./fs-tree.js";

/** Compress with a CLI tool; missing tools fail with the package to install (never a silent skip). */
async function compressWith(cmd: string, data: Buffer): Promise<Buffer> {
  if (!(await hasTool(cmd))) throw new Error(`${cmd} is not installed: apt-get install -y ${cmd === "xz" ? "xz-utils" : cmd}`);
  const child = spawn(cmd, ["-c"], { stdio: ["pipe", "pipe", "inherit"] });
  child.stdin.end(data);
  const chunks: Buffer[] = [];
  for await (const c of child.stdout) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(typeof c === "string" ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks);
}

// Bigger than one pipe buffer, so the tools really stream.
const DATA = Buffer.from("tsbuild layer data ".repeat(20_000) + "end");

describe("detectCompression", () => {
  it("recognises each format by magic bytes", async () => {
    expect(detectCompression(gzipSync(DATA))).toBe("gzip");
    expect(detectCompression(await compressWith("bzip2", DATA))).toBe("bzip2");
    expect(detectCompression(await compressWith("xz", DATA))).toBe("xz");
    expect(detectCompression(await compressWith("zstd", DATA))).toBe("zstd");
    expect(detectCompression(DATA)).toBe("none");
    expect(detectCompression(new Uint8Array([0x1f]))).toBe("none");
    expect(detectCompression(new Uint8Array([]))).toBe("none");
  });
});

describe("decompressStream", () => {
  it("decompresses every format, split into awkward chunks, without losing the sniffed bytes", async () => {
    const samples: [string, Buffer][] = [
      ["gzip", gzipSync(DATA)],
      ["bzip2", await compressWith("bzip2", DATA)],
      ["xz", await compressWith("xz", DATA)],
      ["zstd", await compressWith("zstd", DATA)],
      ["none", DATA],
    ];
    for (const [kind, buf] of samples) {
      const pieces = [buf.subarray(0, 1), buf.subarray(1, 3), buf.subarray(3, 1000), buf.subarray(1000)];
      const r = await decompressStream(Readable.from(pieces));
      expect(r.kind).toBe(kind);
      expect((await readAll(r.stream)).equals(DATA)).toBe(true);
    }
  });

  it("passes tiny and empty uncompressed inputs through", async () => {
    for (const buf of [Buffer.from("ab"), Buffer.alloc(0)]) {
      const r = await decompressStream(Readable.from([buf]));
      expect(r.kind).toBe("none");
      expect((await readAll(r.stream)).equals(buf)).toBe(true);
    }
  });

  it("reports corrupt compressed input as an error", async () => {
    const xz = await compressWith("xz", DATA);
    const corrupt = Buffer.concat([xz.subarray(0, 64), Buffer.alloc(200, 0x55)]);
    const r = await decompressStream(Readable.from([corrupt]));
    await expect(readAll(r.stream)).rejects.toMatchObject({ code: "DECOMPRESS_FAILED" });
    const gz = gzipSync(DATA);
    const g = await decompressStream(Readable.from([Buffer.concat([gz.subarray(0, 100), Buffer.alloc(100, 1)])]));
    await expect(readAll(g.stream)).rejects.toThrow();
  });

  it("names the package to install when a tool is missing", async () => {
    const zst = await compressWith("zstd", DATA);
    const path = process.env["PATH"];
    process.env["PATH"] = "/nonexistent";
    try {
      const err = await decompressStream(Readable.from([zst])).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EnvironmentError);
      expect(err).toMatchObject({ code: "TOOL_MISSING", hint: "apt-get install -y zstd" });
    } finally {
      process.env["PATH"] = path;
    }
  });
});
