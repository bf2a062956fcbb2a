// Parallel gzip: standard readers (zlib, GNU gzip) get the input back; the bytes do not depend on the core count.
import { describe, expect, it } from "vitest";
import { randomBytes, createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { execFileSync } from "node:child_process";
import { createParallelGzip } from "../../src/layer/parallel-gzip.js";

async function compress(data: Buffer, concurrency: number, pieceSize = 1 << 20): Promise<Buffer> {
  const out: Buffer[] = [];
  // Uneven input chunks, so pieces straddle them.
  const chunks = [];
  for (let i = 0; i < data.length; i += 77_777) chunks.push(data.subarray(i, i + 77_777));
  for await (const c of Readable.from(chunks).pipe(createParallelGzip({ concurrency, pieceSize }))) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe("createParallelGzip", () => {
  const data = Buffer.concat([randomBytes(3 << 20), Buffer.from("layer text ".repeat(300_000))]);

  it("round-trips through zlib and GNU gzip as one stream", async () => {
    const gz = await compress(data, 4);
    expect(gunzipSync(gz).equals(data)).toBe(true);
    const viaGzip = execFileSync("gzip", ["-dc"], { input: gz, maxBuffer: 64 << 20 });
    expect(createHash("sha256").update(viaGzip).digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
  });

  it("gives the same bytes whatever the concurrency", async () => {
    const a = await compress(data, 1);
    const b = await compress(data, 3);
    expect(a.equals(b)).toBe(true);
  });

  it("compresses empty input to a valid empty gzip file", async () => {
    const gz = await compress(Buffer.alloc(0), 2);
    expect(gz.length).toBeGreaterThan(0);
    expect(gunzipSync(gz).length).toBe(0);
  });

  it("is one gzip member per fixed piece, exactly what gzip of each piece alone gives", async () => {
    // An exact multiple of the piece size too: no empty trailing member.
    for (const input of [data, data.subarray(0, 3 << 20)]) {
      const want: Buffer[] = [];
      for (let i = 0; i < input.length; i += 1 << 20) want.push(gzipSync(input.subarray(i, i + (1 << 20)), { level: 6 }));
      expect((await compress(input, 2)).equals(Buffer.concat(want))).toBe(true);
    }
  });

  it("a slow reader gets every byte in order (backpressure, not loss)", async () => {
    const out: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        setTimeout(cb, 2);
      },
    });
    await pipeline(Readable.from([data]), createParallelGzip({ concurrency: 3, pieceSize: 256 * 1024 }), slow);
    expect(gunzipSync(Buffer.concat(out)).equals(data)).toBe(true);
  });
});
