// Bundles the CLI into dist/bundle/: one CommonJS file (tsbuild.cjs) plus a V8 code cache of it (tsbuild.cjs.cache),
// loaded by a small bin.js. Resolving, reading and compiling ~40 ES module chunks cost ~40 ms of a ~150 ms no-op
// rebuild; one script compiled from its code cache costs a few. Commands stay lazy inside the one file (esbuild keeps
// each dynamically imported module behind an init function), so `tsbuild images` never runs the build machinery.
// The library (dist/index.js) stays unbundled. Built beside and swapped in with renames, so a tsbuild started
// meanwhile never finds a half-written bundle.
import { build } from "esbuild";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { compileBundle } from "./bundle-loader.cjs";

const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const outdir = `${dist}bundle`;
const fresh = `${dist}.bundle-${process.pid}`;
const old = `${dist}.bundle-old-${process.pid}`;
await rm(fresh, { recursive: true, force: true });
await mkdir(fresh, { recursive: true });
// Node built-ins a no-op rebuild never uses but whose importers it loads (http for ADD URLs, child_process for RUN, zlib
// for export): each is a module of getters that requires the real one at its first use. ~8 ms of start-up otherwise.
const LAZY_BUILTINS = ["child_process", "dgram", "http", "https", "net", "readline", "readline/promises", "tls", "worker_threads", "zlib"];
const lazyBuiltins = {
  name: "lazy-builtins",
  setup(b) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join("|").replace("/", "\\/")})$`);
    b.onResolve({ filter }, (args) =>
      args.namespace === "lazy-builtin" ? { path: args.path, external: true } : { path: args.path.replace(/^node:/, ""), namespace: "lazy-builtin" },
    );
    b.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, (args) => {
      const names = Object.keys(createRequire(import.meta.url)(`node:${args.path}`));
      const getters = names.map((n) => `Object.defineProperty(exports, ${JSON.stringify(n)}, { enumerable: true, get: () => load()[${JSON.stringify(n)}] });`);
      return { loader: "js", contents: `let real;\nconst load = () => (real ??= require("node:${args.path}"));\n${getters.join("\n")}\n` };
    });
  },
};
await build({
  plugins: [lazyBuiltins],
  entryPoints: [fileURLToPath(new URL("../src/cli/main.ts", import.meta.url))],
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  outfile: `${fresh}/tsbuild.cjs`,
  logLevel: "warning",
});
// vm.Script (the loader) has no loader for import() without --experimental-vm-modules: every import must be bundled.
const bundled = await readFile(`${fresh}/tsbuild.cjs`, "utf8");
const left = /[^\w.$]import\(\s*["'`]([^"'`]+)/.exec(bundled);
if (left) throw new Error(`bundle.mjs: the bundle keeps import("${left[1]}"), which fails under the code-cache loader; import it statically`);
// package.json "type": "module" would make bin.js an ES module (and pull in the ES module loader): this one says CommonJS.
await writeFile(`${fresh}/package.json`, '{ "type": "commonjs" }\n');
await copyFile(fileURLToPath(new URL("./bundle-loader.cjs", import.meta.url)), `${fresh}/bin.js`);
await chmod(`${fresh}/bin.js`, 0o755);

// The code cache: compile, evaluate and exercise the bundle, so the functions a run compiles lazily are in the cache
// too: help, parse and check of the example, and a cold build then a no-op rebuild of a FROM scratch project in a
// throwaway store (no base image, no RUN: no sandbox), which puts the cache-hit path in (~12 ms of a no-op's CPU).
// V8 rejects a cache made by another V8 version or other flags; the loader then compiles from source, as correct.
// Named by its final path: the cache keeps the name it was made under, which stack traces show.
const { script, cli } = compileBundle(`${outdir}/tsbuild.cjs`, bundled, undefined);
const sink = new Writable({ write: (_chunk, _enc, done) => done() });
const io = { stdout: sink, stderr: sink, isTTY: false, stdin: process.stdin, stdinIsTTY: true, stdoutIsTTY: false, cwd: process.cwd(), env: {} };
const example = fileURLToPath(new URL("../fixtures/example/Dockerfile", import.meta.url));
for (const argv of [["--help"], ["build", "--help"], ["images", "--help"], ["parse", example], ["check", "-f", example, "."]]) await cli.main(argv, io);
const warm = await mkdtemp(join(tmpdir(), "tsbuild-bundle-warm-"));
try {
  await mkdir(join(warm, "ctx/src"), { recursive: true });
  for (let i = 0; i < 20; i++) await writeFile(join(warm, `ctx/src/f${i}.txt`), `${i}\n`);
  await writeFile(join(warm, "ctx/Dockerfile"), "FROM scratch\nENV A=1\nWORKDIR /app\nCOPY src/ ./src/\nARG V=1\nCOPY src/f1.txt ./\n");
  const build = ["build", "-q", "--root", join(warm, "store"), "-t", "warm:1", join(warm, "ctx")];
  for (let i = 0; i < 2; i++) if ((await cli.main(build, io)) !== 0) throw new Error("the warm-up build failed");
} catch (e) {
  // Only the cache's reach is at stake: warn and keep what was compiled so far.
  console.warn(`bundle.mjs: warm-up build skipped (${e instanceof Error ? e.message : e}); the code cache covers less of a build`);
} finally {
  await rm(warm, { recursive: true, force: true });
}
await writeFile(`${fresh}/tsbuild.cjs.cache`, script.createCachedData());

await rename(outdir, old).catch(() => undefined);
await rename(fresh, outdir);
await rm(old, { recursive: true, force: true });
