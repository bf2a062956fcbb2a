// The context digest a COPY's key holds, and the per-file descriptions a cache miss is explained with.
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openBuildContext } from "../../src/context/build-context.js";
import { openFileHashCache } from "../../src/context/file-hash-cache.js";
import { digestContextSources } from "../../src/context/source-digest.js";
import { createHasher } from "../../src/util/hasher.js";

let base: string;
beforeEach(async () => {
  base = await mkdtemp(path.join(tmpdir(), "tsbuild-sd-"));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe("digestContextSources", () => {
  it("describes every selected path, one entry each, also a name with a newline and a link target", async () => {
    const ctx = path.join(base, "ctx");
    await mkdir(path.join(ctx, "d"), { recursive: true });
    await writeFile(path.join(ctx, "d", "a"), "A");
    await writeFile(path.join(ctx, "d", "two\nlines"), "B");
    await symlink("a", path.join(ctx, "d", "l"));
    const hasher = await createHasher();
    const cache = await openFileHashCache(path.join(base, "store"), ctx, hasher);
    const d = await digestContextSources(openBuildContext(ctx, []), ["d"], cache, hasher);
    expect(Object.keys(d.files).sort()).toEqual(["0:d", "0:d/a", "0:d/l", "0:d/two\nlines"]);
    expect(d.files["0:d/a"]).toMatch(new RegExp(`^f:[0-7]+:\\d+:\\d+:${hasher.bytes(Buffer.from("A"))}$`));
    expect(d.files["0:d/two\nlines"]).toMatch(new RegExp(`:${hasher.bytes(Buffer.from("B"))}$`));
    expect(d.files["0:d/l"]).toMatch(/^l:777:.*:a$/);
    // The same selection digests the same; another content does not.
    expect((await digestContextSources(openBuildContext(ctx, []), ["d"], cache, hasher)).digest).toBe(d.digest);
    await writeFile(path.join(ctx, "d", "a"), "C");
    expect((await digestContextSources(openBuildContext(ctx, []), ["d"], cache, hasher)).digest).not.toBe(d.digest);
  });
});
