// A stored layer unpacked on its own as a kept overlay lowerdir: made once per diff_id and found again, and refused
// (undefined, nothing kept, nothing left in tmp/) for a layer that means something else on its own than on the
// layers below: whiteouts, a member whose parent directory is not in the layer, a hard link to a lower file.
import { lstat, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureLayerDir } from "../../src/snapshot/layer-dirs.js";
import { openContentStore } from "../../src/store/content-store.js";
import { tarBytes, type TarMember } from "../helpers/tar-bytes.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tsbuild-layerdirs-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const signal = new AbortController().signal;

async function stored(members: TarMember[]) {
  const content = openContentStore(root);
  const { digest } = await content.putBytes(await tarBytes(members));
  return { content, digest };
}

async function tmpLeft(): Promise<string[]> {
  return readdir(join(root, "tmp")).catch(() => []);
}

describe("ensureLayerDir", () => {
  it("unpacks a layer whose members all have their parents in it, once, and finds it again", async () => {
    const { content, digest } = await stored([
      { name: "app/", type: "directory", mode: 0o750, uid: 1000, gid: 1000 },
      { name: "app/a.txt", body: "a\n", mode: 0o640 },
      { name: "app/b.txt", type: "link", linkname: "app/a.txt" },
    ]);
    const dir = await ensureLayerDir(root, digest, content, signal);
    expect(dir).toBeDefined();
    const d = dir as string;
    expect(await readFile(join(d, "app/a.txt"), "utf8")).toBe("a\n");
    const app = await lstat(join(d, "app"));
    expect([app.mode & 0o7777, app.uid, app.gid]).toEqual([0o750, 1000, 1000]);
    expect((await lstat(join(d, "app/b.txt"))).ino).toBe((await lstat(join(d, "app/a.txt"))).ino);
    const again = await ensureLayerDir(root, digest, content, signal);
    expect(again).toBe(d);
    expect(await tmpLeft()).toEqual([]);
  });

  it.each([
    [
      "a whiteout",
      [
        { name: "etc/", type: "directory" },
        { name: "etc/.wh.passwd", body: "" },
      ],
    ],
    [
      "an opaque directory",
      [
        { name: "etc/", type: "directory" },
        { name: "etc/.wh..wh..opq", body: "" },
      ],
    ],
    ["a member whose parent is not in the layer (it may be a symlink below)", [{ name: "lib/x.so", body: "x" }]],
    [
      "a hard link to a file of a lower layer",
      [
        { name: "bin/", type: "directory" },
        { name: "bin/sh2", type: "link", linkname: "bin/sh" },
      ],
    ],
  ] as [string, TarMember[]][])("refuses %s and keeps nothing", async (_what, members) => {
    const before = await readdir(join(root, "snapshots")).catch(() => []);
    const { content, digest } = await stored(members);
    expect(await ensureLayerDir(root, digest, content, signal)).toBeUndefined();
    expect(await readdir(join(root, "snapshots")).catch(() => [])).toEqual(before);
    expect(await tmpLeft()).toEqual([]);
  });
});
