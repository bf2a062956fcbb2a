// Cache keys are pure: same parts → same key; any part, the parent, or a part's name changes it; order does not.
import { describe, expect, it } from "vitest";
import { createHasher } from "../../src/util/hasher.js";
import { cacheKey } from "../../src/cache/keys.js";

describe("cacheKey", async () => {
  const h = await createHasher();
  it("is stable and independent of the order parts were gathered in", () => {
    const a = cacheKey(h, "p", { instruction: "RUN x", user: "" });
    const b = cacheKey(h, "p", { user: "", instruction: "RUN x" });
    expect(a.digest).toMatch(/^[0-9a-f]{32}$/);
    expect(b.digest).toBe(a.digest);
  });
  it("changes with the parent, any value, or a part moving between names", () => {
    const base = cacheKey(h, "p", { a: "1", b: "" }).digest;
    expect(cacheKey(h, "q", { a: "1", b: "" }).digest).not.toBe(base);
    expect(cacheKey(h, undefined, { a: "1", b: "" }).digest).not.toBe(base);
    expect(cacheKey(h, "p", { a: "2", b: "" }).digest).not.toBe(base);
    expect(cacheKey(h, "p", { a: "", b: "1" }).digest).not.toBe(base);
    expect(cacheKey(h, "p", { a: "1" }).digest).not.toBe(base);
  });
});

describe("hasher", async () => {
  const h = await createHasher();
  it("streams to the same content hash as one call", () => {
    const data = Buffer.from("x".repeat(100_000));
    const s = h.stream();
    s.update(data.subarray(0, 12345));
    s.update(data.subarray(12345));
    expect(s.digest()).toBe(h.bytes(data));
    expect(h.bytes(Buffer.from("a"))).not.toBe(h.bytes(Buffer.from("b")));
  });
});
