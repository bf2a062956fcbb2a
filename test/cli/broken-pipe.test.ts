// `tsbuild … | head`: the reader closing the pipe early is no crash (no Node stack trace), as with a Go CLI.
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { BIN, tempDir } from "../helpers/cli.js";

const run = promisify(execFile);
let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir("broken-pipe-");
});
afterAll(async () => {
  await dir?.cleanup();
});

it("output cut off by `head` ends quietly", async () => {
  // Megabytes of JSON: far more than a pipe buffer, so the write fails with EPIPE once head has gone.
  const file = join(dir.path, "Dockerfile");
  await writeFile(file, ["FROM scratch", ...Array.from({ length: 20_000 }, (_, i) => `LABEL key${i}="a fairly long label value number ${i}"`)].join("\n"));
  const { stdout, stderr } = await run("sh", ["-c", `"${process.execPath}" "${BIN}" parse --json -f "${file}" | head -c 100; echo "status=\${PIPESTATUS:-}"`], {
    maxBuffer: 1 << 20,
  });
  expect(stdout.length).toBeGreaterThan(100);
  expect(stderr).not.toMatch(/EPIPE|Unhandled|node:events|this is a bug/);
});
