// Several OS processes committing the same blob and tagging the same name at once (the real multi-process case).
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openContentStore } from "../../src/store/content-store.js";
import { openImageStore } from "../../src/store/image-store.js";
import { blobBytes } from "../helpers/store.js";

const run = promisify(execFile);
let dir: string;
let out: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsbuild-mp-"));
  out = join(dir, "js");
  // Compile just the store (and what it imports) so plain `node` children can load it.
  const repo = resolve(import.meta.dirname, "../..");
  await run(
    join(repo, "node_modules/.bin/tsc"),
    [
      "--module",
      "nodenext",
      "--moduleResolution",
      "nodenext",
      "--target",
      "es2022",
      "--types",
      "node",
      "--skipLibCheck",
      "--outDir",
      out,
      "--rootDir",
      join(repo, "src"),
      join(repo, "src/store/content-store.ts"),
      join(repo, "src/store/image-store.ts"),
    ],
    { cwd: repo },
  ).catch(
    // Type errors in unrelated in-progress files must not block this test; tsc still emits, and a missing output fails below.
    () => undefined,
  );
  await writeFile(join(out, "package.json"), '{"type":"module"}');
  await writeFile(
    join(out, "child.js"),
    `import { openContentStore } from "./store/content-store.js";
import { openImageStore } from "./store/image-store.js";
const [root, i] = process.argv.slice(2);
const data = Buffer.alloc(4 * 1024 * 1024, 42);
const w = openContentStore(root).write();
for (let off = 0; off < data.length; off += 65536) {
  if (!w.stream.write(data.subarray(off, off + 65536))) await new Promise((r) => w.stream.once("drain", r));
}
w.stream.end();
const r = await w.commit();
await openImageStore(root).set("docker.io/library/race:latest", { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: r.digest, size: Number(i) });
process.stdout.write(JSON.stringify(r));
`,
  );
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("store across processes", () => {
  it("8 processes committing the same blob and tag all succeed and leave consistent state", async () => {
    const root = join(dir, "store");
    const results = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) =>
          new Promise<string>((res, rej) => {
            const c = spawn(process.execPath, [join(out, "child.js"), root, String(i)], { stdio: ["ignore", "pipe", "inherit"] });
            let s = "";
            c.stdout.on("data", (d: Buffer) => (s += d.toString()));
            c.on("close", (code) => (code === 0 ? res(s) : rej(new Error(`child exited ${code}`))));
          }),
      ),
    );
    const digest = `sha256:${createHash("sha256")
      .update(Buffer.alloc(4 * 1024 * 1024, 42))
      .digest("hex")}` as const;
    for (const r of results) expect(JSON.parse(r)).toEqual({ digest, size: 4 * 1024 * 1024 });
    const cs = openContentStore(root);
    const bytes = await blobBytes(cs, digest);
    expect(bytes.length).toBe(4 * 1024 * 1024);
    expect(`sha256:${createHash("sha256").update(bytes).digest("hex")}`).toBe(digest);
    expect(await readdir(join(root, "tmp"))).toEqual([]);
    const refs = await openImageStore(root).list();
    expect(refs).toHaveLength(1);
    expect(refs[0]?.target.digest).toBe(digest);
  }, 60_000);
});
