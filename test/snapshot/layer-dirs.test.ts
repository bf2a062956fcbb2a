// A stored layer unpacked on its own as a kept overlay lowerdir: made once per diff_id and found again, and refused
// (undefined, nothing kept, nothing left in tmp/) for a layer that means something else on its own than on the
// layers below: whiteouts, a member whose parent directory is not in the layer, a hard link to a lower file.
import { lstat, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureLayerDirs } from "../../src/snapshot/layer-dirs.js";
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

describe("ensureLayerDirs", () => {
  it("unpacks a layer whose members all have their parents in it, once, and finds it again", async () => {
    const { content, digest } = await stored([
      { name: "app/", type: "directory", mode: 0o750, uid: 1000, gid: 1000 },
      { name: "app/a.txt", body: "a\n", mode: 0o640 },
      { name: "app/b.txt", type: "link", linkname: "app/a.txt" },
    ]);
    const dirs = await ensureLayerDirs(root, digest, content, signal);
    expect(dirs).toHaveLength(1);
    const d = (dirs as string[])[0] as string;
    expect(await readFile(join(d, "app/a.txt"), "utf8")).toBe("a\n");
    const app = await lstat(join(d, "app"));
    expect([app.mode & 0o7777, app.uid, app.gid]).toEqual([0o750, 1000, 1000]);
    expect((await lstat(join(d, "app/b.txt"))).ino).toBe((await lstat(join(d, "app/a.txt"))).ino);
    expect(await ensureLayerDirs(root, digest, content, signal)).toEqual([d]);
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
    expect(await ensureLayerDirs(root, digest, content, signal)).toBeUndefined();
    expect(await readdir(join(root, "snapshots")).catch(() => [])).toEqual(before);
    expect(await tmpLeft()).toEqual([]);
  });

  it("keeps a layer made in place of another as a delta of what differs, over the other's dirs", async () => {
    const files = (a: string): TarMember[] => [
      { name: "srv/", type: "directory" },
      { name: "srv/keep/", type: "directory", mode: 0o750 },
      ...Array.from({ length: 10 }, (_, i) => ({ name: `srv/keep/f${i}`, body: `same ${i}\n` })),
      { name: "srv/x/", type: "directory" },
      { name: "srv/x/changed", body: a },
    ];
    const one = await stored(files("one\n"));
    const two = await stored([...files("two\n"), { name: "srv/x/new", body: "new\n" }]);
    const base = (await ensureLayerDirs(root, one.digest, one.content, signal)) as string[];
    expect(base).toHaveLength(1);
    const stack = (await ensureLayerDirs(root, two.digest, two.content, signal, one.digest)) as string[];
    expect(stack).toHaveLength(2);
    expect(stack[1]).toBe(base[0]);
    const delta = stack[0] as string;
    expect(await readdir(join(delta, "srv"))).toEqual(["x"]);
    expect((await readdir(join(delta, "srv/x"))).sort()).toEqual(["changed", "new"]);
    expect(await readFile(join(delta, "srv/x/changed"), "utf8")).toBe("two\n");
    expect(await readFile(join(base[0] as string, "srv/x/changed"), "utf8")).toBe("one\n");
    expect(await ensureLayerDirs(root, two.digest, two.content, signal)).toEqual(stack);
    // Without the earlier layer's entry (a deletion would need a whiteout), the layer is unpacked whole.
    const three = await stored(files("three\n").filter((m) => m.name !== "srv/keep/f3"));
    expect(await ensureLayerDirs(root, three.digest, three.content, signal, one.digest)).toHaveLength(1);
    expect(await tmpLeft()).toEqual([]);
  });
});
