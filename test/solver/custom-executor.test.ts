// An embedder's executor passed through the Engine runs every RUN (no runtime needed): the solver can be tested with
// a fake, and used with a custom sandbox. The fake writes a file into the rootfs it is given, as a RUN would.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openEngine } from "../../src/engine.js";
import type { Executor, ProcessSpec } from "../../src/executor/types.js";
import { exportOutputs } from "../../src/exporter/outputs.js";
import { build } from "../../src/solver/build.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsbuild-fakeexec-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("RUN steps go to the engine's executor, and their file changes become the layer", async () => {
  const seen: ProcessSpec[] = [];
  const fake: Executor = {
    name: "fake",
    async run(spec, rootfs) {
      seen.push(spec);
      await writeFile(join(rootfs, "ran"), `${spec.args.join(" ")}\n`);
      return { exitCode: 0 };
    },
  };
  const ctx = join(dir, "ctx");
  await mkdir(ctx, { recursive: true });
  const engine = openEngine({ root: join(dir, "store"), executor: fake });
  const result = await build(engine, { contextDir: ctx, dockerfileText: "FROM scratch\nENV A=1\nRUN --network=none echo hello\n", sourceDateEpoch: 0 });
  expect(seen).toHaveLength(1);
  expect(seen[0]).toMatchObject({ args: ["/bin/sh", "-c", "echo hello"], network: "none", uid: 0, cwd: "/" });
  expect(seen[0]?.env).toContain("A=1");
  const out = join(dir, "out");
  await exportOutputs(engine, result, { type: "local", dest: out });
  expect(await readFile(join(out, "ran"), "utf8")).toBe("/bin/sh -c echo hello\n");
  // A rebuild hits the cache: the executor is not asked again.
  await build(engine, { contextDir: ctx, dockerfileText: "FROM scratch\nENV A=1\nRUN --network=none echo hello\n", sourceDateEpoch: 0 });
  expect(seen).toHaveLength(1);
});
