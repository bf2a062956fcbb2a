// tarTail tells a complete tar from one cut at a member boundary, and is not fooled by zero bytes inside a member.
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { tarBytes } from "../helpers/tar-bytes.js";
import { tarTail } from "../../src/layer/tar-tail.js";

async function ended(bytes: Buffer, chunk = 100): Promise<boolean> {
  const tail = tarTail();
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) parts.push(bytes.subarray(i, i + chunk));
  await pipeline(Readable.from(parts), tail, new Writable({ write: (_c, _e, cb) => cb() }));
  return tail.ended();
}

describe("tarTail", () => {
  it("sees the end-of-archive marker of a complete tar", async () => {
    expect(await ended(await tarBytes([{ name: "a", body: "hello" }]))).toBe(true);
  });

  it("sees a tar cut at a member boundary as not ended", async () => {
    const full = await tarBytes([
      { name: "a", body: "hello" },
      { name: "b", body: "world" },
    ]);
    expect(await ended(full.subarray(0, 1024))).toBe(false);
  });

  it("is not fooled by a member made of zero blocks (an empty layer blob) before the cut", async () => {
    const full = await tarBytes([
      { name: "empty-layer", body: Buffer.alloc(1024) },
      { name: "b", body: "world" },
    ]);
    // header (512) + 1024 zero bytes of data: the cut lands right after the zeros.
    expect(await ended(full.subarray(0, 512 + 1024), 7)).toBe(false);
    expect(await ended(full, 7)).toBe(true);
  });
});
