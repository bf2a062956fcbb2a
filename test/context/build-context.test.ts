import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openBuildContext } from "../../src/context/build-context.js";
import { walkTree } from "../../src/context/walk.js";
import type { SourceRange } from "../../src/frontend/types.js";

const range: SourceRange = { file: "Dockerfile", start: { line: 7, column: 1 }, end: { line: 7, column: 20 } };
let ctxDir: string;

async function tree(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(root, rel);
    await mkdir(path.dirname(abs), { recursive: true });
    if (rel.endsWith("/")) await mkdir(abs, { recursive: true });
    else await writeFile(abs, content);
  }
}

async function collect(it: AsyncIterable<{ rel: string }>): Promise<string[]> {
  const out: string[] = [];
  for await (const e of it) out.push(e.rel);
  return out;
}

beforeEach(async () => {
  ctxDir = await mkdtemp(path.join(os.tmpdir(), "ctx-"));
  await tree(ctxDir, {
    "a.txt": "a",
    "b.txt": "b",
    "c.md": "c",
    "src/main.ts": "m",
    "src/util/x.ts": "x",
    "build/out.js": "o",
    "build/keep.js": "k",
    "node_modules/pkg/index.js": "p",
    "empty/": "",
  });
  await symlink("a.txt", path.join(ctxDir, "link-a"));
  await symlink("/etc/passwd", path.join(ctxDir, "abs-link"));
  await symlink("../../../../etc", path.join(ctxDir, "up-link"));
  await symlink("src", path.join(ctxDir, "src-link"));
});
afterEach(async () => {
  await rm(ctxDir, { recursive: true, force: true });
});

describe("resolveSources", () => {
  it("resolves a plain file or directory, ignoring a leading / and cleaning the path", async () => {
    const ctx = openBuildContext(ctxDir, []);
    const [m] = await ctx.resolveSources("/src/./util/../main.ts", range);
    expect(m).toMatchObject({ path: "src/main.ts", resolved: "src/main.ts", abs: path.join(ctxDir, "src/main.ts") });
    expect(m?.stat.isFile()).toBe(true);
    const [root] = await ctx.resolveSources(".", range);
    expect(root?.path).toBe(".");
    expect(root?.stat.isDirectory()).toBe(true);
  });

  it("expands Go globs per segment, sorted", async () => {
    const ctx = openBuildContext(ctxDir, []);
    expect((await ctx.resolveSources("*.txt")).map((m) => m.path)).toEqual(["a.txt", "b.txt"]);
    expect((await ctx.resolveSources("src/*/x.ts")).map((m) => m.path)).toEqual(["src/util/x.ts"]);
    expect((await ctx.resolveSources("[ab].*")).map((m) => m.path)).toEqual(["a.txt", "b.txt"]);
  });

  it("lets a wildcard match nothing, but reports the directory it is matched in when that is missing (as BuildKit)", async () => {
    const ctx = openBuildContext(ctxDir, ["build"]);
    expect(await ctx.resolveSources("*.go", range)).toEqual([]);
    expect(await ctx.resolveSources("src/*/nothing.ts", range)).toEqual([]);
    await expect(ctx.resolveSources("nodir/*.go", range)).rejects.toMatchObject({
      code: "SOURCE_NOT_FOUND",
      message: expect.stringMatching(/"nodir".*nodir\/\*\.go.*not found.*Dockerfile:7/),
      range,
    });
    // A dockerignored directory is not in the context at all.
    await expect(ctx.resolveSources("build/*.js", range)).rejects.toMatchObject({ code: "SOURCE_NOT_FOUND", hint: expect.stringContaining(".dockerignore") });
  });

  it("reports a missing path with the Dockerfile line", async () => {
    const ctx = openBuildContext(ctxDir, []);
    await expect(ctx.resolveSources("nope.txt", range)).rejects.toMatchObject({
      code: "SOURCE_NOT_FOUND",
      message: expect.stringMatching(/nope\.txt.*not found.*Dockerfile:7/),
    });
  });

  it("clamps `..` at the context root, as BuildKit does", async () => {
    const ctx = openBuildContext(ctxDir, []);
    expect((await ctx.resolveSources("../a.txt", range)).map((m) => m.path)).toEqual(["a.txt"]);
    expect((await ctx.resolveSources("src/../../../b.txt", range)).map((m) => m.path)).toEqual(["b.txt"]);
    expect((await ctx.resolveSources("/../*.txt", range)).map((m) => m.path)).toEqual(["a.txt", "b.txt"]);
    expect((await ctx.resolveSources("..", range)).map((m) => m.path)).toEqual(["."]);
    await expect(ctx.resolveSources("../x", range)).rejects.toMatchObject({ code: "SOURCE_NOT_FOUND", message: expect.stringContaining('"../x" not found') });
  });

  it("treats dockerignored paths as absent, with a hint", async () => {
    const ctx = openBuildContext(ctxDir, ["build", "*.md", "!build/keep.js"]);
    await expect(ctx.resolveSources("c.md", range)).rejects.toMatchObject({ code: "SOURCE_NOT_FOUND", hint: expect.stringContaining(".dockerignore") });
    await expect(ctx.resolveSources("build/out.js")).rejects.toMatchObject({ code: "SOURCE_NOT_FOUND" });
    expect((await ctx.resolveSources("build/keep.js")).map((m) => m.path)).toEqual(["build/keep.js"]);
    expect((await ctx.resolveSources("*")).map((m) => m.path)).not.toContain("c.md");
  });

  it("follows a symlink source inside the context only", async () => {
    const ctx = openBuildContext(ctxDir, []);
    const [m] = await ctx.resolveSources("link-a");
    expect(m).toMatchObject({ path: "link-a", resolved: "a.txt" });
    const [d] = await ctx.resolveSources("src-link");
    expect(d).toMatchObject({ path: "src-link", resolved: "src" });
    // /etc/passwd re-rooted into the context does not exist: never the host's file.
    await expect(ctx.resolveSources("abs-link")).rejects.toMatchObject({ code: "SOURCE_NOT_FOUND" });
    await expect(ctx.resolveSources("up-link/passwd")).rejects.toMatchObject({ code: "SOURCE_NOT_FOUND" });
  });
});

describe("walk", () => {
  it("yields everything below a dir, parents first, links as links", async () => {
    const ctx = openBuildContext(ctxDir, []);
    const all = await collect(ctx.walk("."));
    expect(all).toEqual([
      "a.txt",
      "abs-link",
      "b.txt",
      "build",
      "build/keep.js",
      "build/out.js",
      "c.md",
      "empty",
      "link-a",
      "node_modules",
      "node_modules/pkg",
      "node_modules/pkg/index.js",
      "src",
      "src/main.ts",
      "src/util",
      "src/util/x.ts",
      "src-link",
      "up-link",
    ]);
    const entries: { rel: string; link: boolean }[] = [];
    for await (const e of ctx.walk("")) entries.push({ rel: e.rel, link: e.stat.isSymbolicLink() });
    expect(entries.find((e) => e.rel === "src-link")?.link).toBe(true);
    expect(await collect(ctx.walk("src"))).toEqual(["src/main.ts", "src/util", "src/util/x.ts"]);
  });

  it("honours .dockerignore with ! re-includes and skips excluded dirs", async () => {
    const ctx = openBuildContext(ctxDir, ["node_modules", "build", "!build/keep.js", "**/*.md", "*-link"]);
    expect(await collect(ctx.walk("."))).toEqual([
      "a.txt",
      "b.txt",
      "build",
      "build/keep.js",
      "empty",
      "link-a",
      "src",
      "src/main.ts",
      "src/util",
      "src/util/x.ts",
    ]);
  });

  it("walks a large tree quickly", async () => {
    const big = await mkdtemp(path.join(os.tmpdir(), "ctx-big-"));
    try {
      for (let d = 0; d < 50; d++) {
        await mkdir(path.join(big, `d${d}`));
        await Promise.all(Array.from({ length: 200 }, (_, f) => writeFile(path.join(big, `d${d}`, `f${f}`), "")));
      }
      const t0 = performance.now();
      let n = 0;
      for await (const _ of walkTree(big, "", { ignore: { matches: (p) => p.endsWith("f7"), mayReinclude: () => false } })) n++;
      expect(n).toBe(50 + 50 * 199);
      expect(performance.now() - t0).toBeLessThan(5000);
    } finally {
      await rm(big, { recursive: true, force: true });
    }
  });
});
