// Bundles the CLI (esbuild, code-split per command) into dist/bundle/: resolving and compiling ~100 ES modules cost
// ~50 ms of CPU on every start, a large share of a no-op rebuild. The library (dist/index.js) stays unbundled.
import { build } from "esbuild";
import { chmod, rm } from "node:fs/promises";

const outdir = new URL("../dist/bundle/", import.meta.url).pathname;
await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: [new URL("../src/cli/bin.ts", import.meta.url).pathname],
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outdir,
  // CommonJS dependencies (moo, nearley, tar-stream) call require() for Node built-ins.
  banner: { js: "import { createRequire as __tsbuildRequire } from 'node:module'; const require = __tsbuildRequire(import.meta.url);" },
  logLevel: "warning",
});
await chmod(new URL("bin.js", `file://${outdir}`), 0o755);
