// The stage graph at work: a dependency only RUN --mount from=$ARG reveals cannot deadlock --jobs 1, a forward
// COPY --from builds (BuildKit registers every stage first), and check, parse and build report a bad graph alike.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let n = 0;

async function project(dockerfile: string): Promise<string> {
  const ctx = join(dir.path, `ctx-${n++}`);
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, "Dockerfile"), dockerfile);
  return ctx;
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms))]);
}

beforeAll(async () => {
  dir = await tempDir("tsbuild-stagegraph-");
  root = join(dir.path, "store");
  const loaded = await tsbuild(["load", "-i", await makeBusyboxArchive(dir.path), "--root", root]);
  expect(loaded.code, loaded.stderr).toBe(0);
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("stage graph", () => {
  it("--jobs 1 with a stage found only through RUN --mount from=$S builds (no deadlock), and prune is not blocked after", async () => {
    const ctx = await project(
      "FROM busybox:local AS a\nRUN --network=none echo marker-from-a > /marker\n" +
        "FROM busybox:local\nARG S=a\nRUN --network=none --mount=type=bind,from=$S,target=/x cat /x/marker\n",
    );
    const res = await withDeadline(tsbuild(["build", "--progress=plain", "--jobs", "1", "--root", root, ctx]), 60_000);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain("marker-from-a");
    const prune = await tsbuild(["prune", "--root", root]);
    expect(prune.code, prune.stderr).toBe(0);
  });

  it("COPY --from a stage defined later builds with that stage's files", async () => {
    const ctx = await project("FROM busybox:local AS one\nCOPY --from=two /x /y\nFROM busybox:local AS two\nRUN --network=none echo from-two > /x\n");
    const out = join(dir.path, "forward-out");
    const res = await tsbuild(["build", "--progress=plain", "--target", "one", "-o", `type=local,dest=${out}`, "--root", root, ctx]);
    expect(res.code, res.stderr).toBe(0);
    expect(await readFile(join(out, "y"), "utf8")).toBe("from-two\n");
  });

  it("check and build report a cycle with the same message at the same place; parse, like BuildKit's parser, does not", async () => {
    const ctx = await project("FROM busybox:local AS a\nCOPY --from=b /x /\nFROM busybox:local AS b\nCOPY --from=a /y /\n");
    const where = (s: string) => /Dockerfile:(\d+:\d+): (circular dependency detected on stage: \w+)/.exec(s)?.slice(1);
    const check = await tsbuild(["check", ctx]);
    const build = await tsbuild(["build", "--root", root, ctx]);
    for (const r of [check, build]) expect(r.code).not.toBe(0);
    const seen = [check, build].map((r) => where(r.stderr));
    expect(seen[0]).toBeDefined();
    expect(seen[1]).toEqual(seen[0]);
    const parse = await tsbuild(["parse", "--json", ctx]);
    expect(parse.code, parse.stderr).toBe(0);
  });
});
