// docs/api.md's example program, run for real: extracted from the document, written next to a node_modules/tsbuild
// link to this package (so it imports through package.json's exports map, as a user's program would), and run with
// node against a local registry.
import { afterAll, beforeAll, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { mkdir, readFile, readdir, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { REPO, tempDir } from "../helpers/cli.js";
import { startRegistry, type RegistryServer } from "../helpers/registry-server.js";

const run = promisify(execFile);
let dir: { path: string; cleanup(): Promise<void> };
let reg: RegistryServer;

/** The newest mtime of any file under `d`. */
async function newest(d: string): Promise<number> {
  let max = 0;
  for (const e of await readdir(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    max = Math.max(max, e.isDirectory() ? await newest(p) : (await stat(p)).mtimeMs);
  }
  return max;
}

/** `npm test` builds dist/ first (pretest); a lone run of this file compiles it when it is missing or stale. */
async function ensureDist(): Promise<void> {
  const built = await stat(join(REPO, "dist/index.js")).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  if (built >= (await newest(join(REPO, "src")))) return;
  await run(process.execPath, [join(REPO, "node_modules/typescript/bin/tsc"), "-p", join(REPO, "tsconfig.json")], { cwd: REPO });
}

/** The one ```mjs block of docs/api.md. */
function exampleProgram(markdown: string): string {
  const blocks = [...markdown.matchAll(/^```mjs\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
  if (blocks.length !== 1) throw new Error(`docs/api.md should hold exactly one \`\`\`mjs example, found ${blocks.length}`);
  return blocks[0] as string;
}

beforeAll(async () => {
  dir = await tempDir("tsbuild-api-example-test-");
  reg = await startRegistry();
  await ensureDist();
}, 180_000);
afterAll(async () => {
  await reg?.stop();
  await dir?.cleanup();
});

it("the example in docs/api.md builds, exports a cache, pushes and reads the metadata", async () => {
  const code = exampleProgram(await readFile(join(REPO, "docs/api.md"), "utf8"));
  await mkdir(join(dir.path, "node_modules"));
  await symlink(REPO, join(dir.path, "node_modules/tsbuild"));
  await writeFile(join(dir.path, "example.mjs"), code);
  const res = await run(process.execPath, ["example.mjs"], {
    cwd: dir.path,
    env: { ...process.env, TSBUILD_EXAMPLE_REGISTRY: reg.host, TMPDIR: dir.path },
  }).catch((e: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(`the example failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}\nregistry log:\n${reg.log()}`);
  });
  expect(res.stdout).toMatch(/^plan: 1 stage\(s\), target stage 0$/m);
  expect(res.stdout).toMatch(/^built sha256:[0-9a-f]{64} in \d+ steps: .*COPY hello\.txt/m);
  expect(res.stdout).toMatch(/^metadata: 1 step\(s\) built, 0 from cache$/m);
  expect(res.stdout).toContain(`pushed ${reg.host}/example/hello:1@sha256:`);
  expect(res.stdout).toMatch(/^error CONTEXT_NOT_FOUND: /m);
  expect(res.stdout).toMatch(/^example done$/m);
  // The registry really holds the image.
  const tags = await fetch(`${reg.url}/v2/example/hello/tags/list`).then((r) => r.json());
  expect(tags).toEqual({ name: "example/hello", tags: ["1"] });
}, 180_000);
