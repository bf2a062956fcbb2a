import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openImageStore } from "../../src/store/image-store.js";
import { refKey } from "../../src/store/layout.js";
import type { Descriptor } from "../../src/image/types.js";

const desc = (c: string): Descriptor => ({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${c.repeat(64)}`, size: 42 });

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "tsbuild-is-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("image store", () => {
  it("tags, lists sorted, retags and deletes", async () => {
    const is = openImageStore(root);
    expect(await is.list()).toEqual([]);
    await is.set("docker.io/library/zeta:1", desc("a"));
    const rec = await is.set("docker.io/library/alpha:latest", desc("b"));
    expect(rec.name).toBe("docker.io/library/alpha:latest");
    expect(Number.isNaN(Date.parse(rec.updated))).toBe(false);
    expect((await is.list()).map((r) => r.name)).toEqual(["docker.io/library/alpha:latest", "docker.io/library/zeta:1"]);
    await is.set("docker.io/library/alpha:latest", desc("c"));
    expect((await is.get("docker.io/library/alpha:latest"))?.target).toEqual(desc("c"));
    expect(await is.delete("docker.io/library/alpha:latest")).toBe(true);
    expect(await is.delete("docker.io/library/alpha:latest")).toBe(false);
    expect(await is.get("docker.io/library/alpha:latest")).toBeUndefined();
    expect((await is.list()).map((r) => r.name)).toEqual(["docker.io/library/zeta:1"]);
  });

  it("stores names with / : @ safely as single file names", async () => {
    const is = openImageStore(root);
    const name = "registry.example.com:5000/a/b@sha256:" + "f".repeat(64);
    await is.set(name, desc("d"));
    const files = await readdir(join(root, "refs"));
    expect(files).toHaveLength(1);
    expect(files[0]).not.toContain("/");
    expect((await is.get(name))?.name).toBe(name);
    const long = "x/".repeat(200) + "y:1";
    expect(refKey(long).length).toBeLessThan(100);
    await is.set(long, desc("e"));
    expect((await is.get(long))?.target.digest).toBe(desc("e").digest);
  });

  it("skips corrupt ref files in list and reports them", async () => {
    const warnings: string[] = [];
    const is = openImageStore(root, { onWarning: (m) => warnings.push(m) });
    await is.set("docker.io/library/good:1", desc("a"));
    await writeFile(join(root, "refs", "broken.json"), '{"name": "docker.io/lib');
    await writeFile(join(root, "refs", "wrong-shape.json"), '{"name": 3}');
    await writeFile(join(root, "refs", ".inflight.tmp-1-abc"), "partial");
    expect((await is.list()).map((r) => r.name)).toEqual(["docker.io/library/good:1"]);
    expect(warnings).toHaveLength(2);
    await writeFile(join(root, "refs", `${refKey("docker.io/library/bad:1")}.json`), "nope");
    expect(await is.get("docker.io/library/bad:1")).toBeUndefined();
    expect(await is.delete("docker.io/library/bad:1")).toBe(true);
  });

  it("concurrent tagging of the same name never corrupts the ref", async () => {
    const is = openImageStore(root);
    const digests = "0123456789abcdef".split("");
    await Promise.all(digests.map((c) => openImageStore(root).set("docker.io/library/race:1", desc(c))));
    const r = await is.get("docker.io/library/race:1");
    expect(r).toBeDefined();
    expect(digests.map((c) => desc(c).digest)).toContain(r?.target.digest);
    expect((await readdir(join(root, "refs"))).filter((f) => f.startsWith("."))).toEqual([]);
  });
});
