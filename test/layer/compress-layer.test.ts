// compressLayerStream on its own: pigz and node's zlib both give gzip that gunzips to the input and the same bytes
// on every run, zstd (with --ultra above 19) round-trips through the zstd tool, and bad levels or a missing zstd fail
// with a message that says what to do.
import { describe, expect, it } from "vitest";
import { Readable, Writable } from "node:stream";
import { gunzipSync } from "node:zlib";
import { spawnSync } from "node:child_process";
import { compressLayerStream, gzipEngine, type CompressOptions } from "../../src/layer/compress-layer.js";
import { requireTool } from "../helpers/tools.js";

/** 9 MiB of varied text: more than two 4 MiB zlib members. */
const input = Buffer.from(Array.from({ length: 900_000 }, (_, i) => `line ${i} ${(i * 2654435761) % 9973}`).join("\n"));

async function compress(opts: CompressOptions, data: Buffer = input): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      parts.push(c);
      cb();
    },
  });
  await compressLayerStream(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), sink, opts);
  return Buffer.concat(parts);
}

describe("compressLayerStream", () => {
  it("gzip with pigz and with node's zlib: valid, deterministic, and each chosen as asked", async () => {
    await requireTool("pigz");
    const noPigz = { ...process.env, TSBUILD_NO_PIGZ: "1" };
    expect(gzipEngine(process.env)).toBe("pigz");
    expect(gzipEngine(noPigz)).toBe("zlib");
    const a = await compress({ format: "gzip", level: 6 });
    const b = await compress({ format: "gzip", level: 6 });
    const z = await compress({ format: "gzip", level: 6, env: noPigz });
    expect(a.equals(b)).toBe(true);
    expect(a.equals(z)).toBe(false);
    expect(gunzipSync(a).equals(input)).toBe(true);
    expect(gunzipSync(z).equals(input)).toBe(true);
    expect((await compress({ format: "gzip", level: 1 })).length).toBeGreaterThan((await compress({ format: "gzip", level: 9 })).length);
  });

  it("zstd round-trips, --ultra levels included", async () => {
    await requireTool("zstd");
    for (const level of [3, 20]) {
      // --ultra levels are slow (tens of seconds for 9 MiB on one core): a 256 KiB slice is enough there.
      const data = level > 19 ? input.subarray(0, 256 << 10) : input;
      const out = await compress({ format: "zstd", level }, data);
      expect(out.subarray(0, 4).toString("hex")).toBe("28b52ffd");
      const back = spawnSync("zstd", ["-dc"], { input: out, maxBuffer: 64 << 20 });
      expect(back.status).toBe(0);
      expect(Buffer.from(back.stdout).equals(data)).toBe(true);
    }
  });

  it("an empty layer still compresses to a valid stream", async () => {
    expect(gunzipSync(await compress({ format: "gzip" }, Buffer.alloc(0))).length).toBe(0);
    expect(gunzipSync(await compress({ format: "gzip", env: { ...process.env, TSBUILD_NO_PIGZ: "1" } }, Buffer.alloc(0))).length).toBe(0);
  });

  it("a level out of range and a missing zstd are clear errors", async () => {
    await expect(compress({ format: "gzip", level: 10 })).rejects.toMatchObject({ code: "BAD_FLAG_VALUE", hint: "gzip levels run from 0 to 9" });
    await expect(compress({ format: "zstd", level: 0 })).rejects.toMatchObject({ code: "BAD_FLAG_VALUE" });
    await expect(compress({ format: "zstd", env: { PATH: "/nonexistent" } })).rejects.toMatchObject({ code: "TOOL_MISSING", hint: "apt-get install -y zstd" });
  });
});
