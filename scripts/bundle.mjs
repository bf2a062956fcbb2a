// Bundles the CLI (esbuild, code-split per command) into dist/bundle/: resolving and compiling ~100 ES modules cost
// ~50 ms of CPU on every start, a large share of a no-op rebuild. The library (dist/index.js) stays unbundled.
// Built beside and swapped in with renames, so a tsbuild started meanwhile never finds a half-written bundle.
import { build } from "esbuild";
import { chmod, rename, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const outdir = `${dist}bundle`;
const fresh = `${dist}.bundle-${process.pid}`;
const old = `${dist}.bundle-old-${process.pid}`;
await rm(fresh, { recursive: true, force: true });
await build({
  entryPoints: [fileURLToPath(new URL("../src/cli/bin.ts", import.meta.url))],
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outdir: fresh,
  // CommonJS dependencies (moo, nearley, tar-stream) call require() for Node built-ins.
  banner: { js: "import { createRequire as __tsbuildRequire } from 'node:module'; const require = __tsbuildRequire(import.meta.url);" },
  logLevel: "warning",
});
await chmod(`${fresh}/bin.js`, 0o755);
await rename(outdir, old).catch(() => undefined);
await rename(fresh, outdir);
await rm(old, { recursive: true, force: true });
