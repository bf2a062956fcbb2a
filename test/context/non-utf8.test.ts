// File names that are not valid UTF-8 in the context: a clear NON_UTF8_PATH error naming the escaped path and the
// fix (never ENOENT or "this is a bug"); a .dockerignore pattern leaves such a file out and the build works.
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";

let dir: { path: string; cleanup(): Promise<void> };
let project: string;

beforeAll(async () => {
  dir = await tempDir("tsbuild-nonutf8-");
  project = join(dir.path, "proj");
  await mkdir(join(project, "d"), { recursive: true });
  // Node's fs takes a Buffer path: the name holds the raw byte 0xff.
  await writeFile(Buffer.concat([Buffer.from(join(project, "d/bad")), Buffer.from([0xff]), Buffer.from("name")]), "x");
  await writeFile(join(project, "d/good"), "g");
  await writeFile(join(project, "d/caf\u00e9 \ufffd"), "valid UTF-8, with a real U+FFFD");
  await writeFile(join(project, "Dockerfile"), "FROM scratch\nCOPY d /d\n");
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("non-UTF-8 file names in the context", () => {
  it("fail with NON_UTF8_PATH naming the escaped path; a .dockerignore line leaves them out", async () => {
    const root = join(dir.path, "store");
    const res = await tsbuild(["build", "--progress", "plain", "--root", root, project]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('the file name "d/bad\\xffname"');
    expect(res.stderr).toContain("is not valid UTF-8");
    expect(res.stderr).toContain('"d/bad*name"');
    expect(res.stderr).not.toMatch(/ENOENT|this is a bug/);

    await writeFile(join(project, ".dockerignore"), "d/bad*name\n");
    const out = join(dir.path, "out");
    const ok = await tsbuild(["build", "--progress", "plain", "--root", root, "--output", `type=local,dest=${out}`, project]);
    expect(ok.code, ok.stderr).toBe(0);
    expect((await readdir(join(out, "d"))).sort()).toEqual(["caf\u00e9 \ufffd", "good"]);
  });
});

describe("non-UTF-8 file names made by RUN", () => {
  for (const snapshotter of ["overlay", "copy"]) {
    it(`fail with NON_UTF8_PATH naming the file, never drop it silently (--snapshotter ${snapshotter})`, async () => {
      const root = join(dir.path, `store-run-${snapshotter}`);
      const { storeWithBusybox } = await import("../helpers/busybox-image.js");
      await storeWithBusybox(root);
      const p = join(dir.path, `run-${snapshotter}`);
      await mkdir(p);
      await writeFile(join(p, "Dockerfile"), 'FROM busybox:local\nRUN mkdir /out && touch "/out/bad$(printf "\\377")name"\n');
      const res = await tsbuild(["build", "--progress", "plain", "--root", root, "--snapshotter", snapshotter, p]);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('the step created "/out/bad\\xffname", whose name is not valid UTF-8');
      expect(res.stderr).not.toMatch(/ENOENT|this is a bug/);
    });
  }
});
