// RUN --mount=type=bind from the context sees what COPY sees: .dockerignore'd files are absent (read-only and rw
// binds), changing one does not miss the cache, changing a file the mount exposes does.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storeWithBusybox } from "../helpers/busybox-image.js";
import { tempDir, tsbuild } from "../helpers/cli.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let project: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

interface Meta {
  "tsbuild.cache": { steps: { name: string; cached: boolean }[] };
}

let n = 0;
async function build(): Promise<{ cached: boolean[]; out: string }> {
  const meta = join(dir.path, `meta-${++n}.json`);
  const out = join(dir.path, `out-${n}`);
  const res = await r(["build", "--progress", "plain", "--metadata-file", meta, "--output", `type=local,dest=${out}`, project]);
  expect(res.code, res.stderr).toBe(0);
  const m = JSON.parse(await readFile(meta, "utf8")) as Meta;
  return { cached: m["tsbuild.cache"].steps.map((s) => s.cached), out };
}

beforeAll(async () => {
  dir = await tempDir("tsbuild-bindig-");
  root = await storeWithBusybox(join(dir.path, "store"));
  project = join(dir.path, "proj");
  await mkdir(join(project, "app/secret"), { recursive: true });
  await mkdir(join(project, "app/keep"), { recursive: true });
  await writeFile(join(project, ".dockerignore"), ".env\n**/secret\n**/*.log\n!keep.log\n");
  await writeFile(join(project, ".env"), "TOKEN=hunter2\n");
  await writeFile(join(project, "app/main.txt"), "main v1\n");
  await writeFile(join(project, "app/secret/key"), "private\n");
  await writeFile(join(project, "app/debug.log"), "log\n");
  await writeFile(join(project, "keep.log"), "kept\n");
  await writeFile(join(project, "app/keep/k"), "k\n");
  await writeFile(
    join(project, "Dockerfile"),
    [
      "FROM busybox:local",
      "RUN --mount=type=bind,target=/ctx cd /ctx && find . | sort > /ro.txt && cat app/main.txt >> /ro.txt && (cat .env 2>&1 || true) >> /ro.txt",
      "RUN --mount=type=bind,source=app,target=/app,rw cd /app && find . | sort > /rw.txt && echo scribble > main.txt && rm -rf keep",
      "",
    ].join("\n"),
  );
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("RUN --mount=type=bind and .dockerignore", () => {
  it("exposes only the files .dockerignore keeps, and keys the step on exactly those", async () => {
    const first = await build();
    const ro = await readFile(join(first.out, "ro.txt"), "utf8");
    expect(ro.split("\n").slice(0, 9)).toEqual([
      ".",
      "./.dockerignore",
      "./Dockerfile",
      "./app",
      "./app/keep",
      "./app/keep/k",
      "./app/main.txt",
      "./keep.log",
      "main v1",
    ]);
    expect(ro).not.toContain("hunter2");
    expect(await readFile(join(first.out, "rw.txt"), "utf8")).toBe([".", "./keep", "./keep/k", "./main.txt", ""].join("\n"));
    // Writes through the rw bind were thrown away, never reaching the context.
    expect(await readFile(join(project, "app/main.txt"), "utf8")).toBe("main v1\n");
    expect(await readFile(join(project, "app/keep/k"), "utf8")).toBe("k\n");

    // Ignored files changed: every step still hits.
    await writeFile(join(project, ".env"), "TOKEN=changed\n");
    await writeFile(join(project, "app/secret/key"), "rotated\n");
    await writeFile(join(project, "app/debug.log"), "more log\n");
    expect((await build()).cached).toEqual([true, true]);

    // A file the mounts expose changed: both RUNs miss and see it.
    await writeFile(join(project, "app/main.txt"), "main v2\n");
    const third = await build();
    expect(third.cached).toEqual([false, false]);
    expect(await readFile(join(third.out, "ro.txt"), "utf8")).toContain("main v2");
  });
});
