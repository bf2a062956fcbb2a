// Start-up of the CLI as shipped (dist/bundle): the one-file bundle runs from a V8 code cache V8 accepts, a bundle
// edited after its cache still runs, and a no-op rebuild loads none of the built-ins it does not need.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cp, mkdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { containerName } from "../../src/executor/orphan-containers.js";
import { defaultStateDir } from "../../src/executor/runtime-cli.js";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { promisify } from "node:util";
import { join } from "node:path";
import { BIN, tempDir } from "../helpers/cli.js";
import { storeWithBusybox } from "../helpers/busybox-image.js";

const run = promisify(execFile);
const bundle = join(BIN, "..", "tsbuild.cjs");

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("CLI start-up", () => {
  it("runs the bundle from a code cache that this Node's V8 accepts", async () => {
    const { compileBundle } = createRequire(import.meta.url)(BIN) as {
      compileBundle(file: string, source: string, cache: Buffer | undefined): { script: { cachedDataRejected?: boolean } };
    };
    const { script } = compileBundle(bundle, await readFile(bundle, "utf8"), await readFile(`${bundle}.cache`));
    expect(script.cachedDataRejected).toBe(false);
  });

  it("still runs when the bundle was edited after its cache was made", async () => {
    const copy = join(dir.path, "bundle");
    await cp(join(BIN, ".."), copy, { recursive: true });
    const made = new Date(Date.now() - 60_000);
    await utimes(join(copy, "tsbuild.cjs.cache"), made, made); // the cache was made before the edit
    // Same length: V8's own check (the source's length) would take the stale cache and print the old version.
    const source = await readFile(join(copy, "tsbuild.cjs"), "utf8");
    expect(source).toContain("tsbuild 0.1.0\\n");
    await writeFile(join(copy, "tsbuild.cjs"), source.replace("tsbuild 0.1.0\\n", "tsbuild 0.1.9\\n"));
    const { stdout } = await run(process.execPath, [join(copy, "bin.js"), "--version"]);
    expect(stdout).toBe("tsbuild 0.1.9\n");
  });

  it("a no-op rebuild loads no child_process, http(s), tls or zlib", async () => {
    const root = await storeWithBusybox(join(dir.path, "store"));
    const project = join(dir.path, "project");
    await mkdir(join(project, "src"), { recursive: true });
    await writeFile(join(project, "src", "a.txt"), "a\n");
    await writeFile(join(project, "Dockerfile"), "FROM busybox:local\nENV A=1\nCOPY src/ /src/\nWORKDIR /src\n");
    const env = { ...process.env, SOURCE_DATE_EPOCH: "0" };
    const args = [BIN, "build", "-q", "--root", root, "-t", "noop:1", project];
    await run(process.execPath, args, { env });
    // Node's own list of the built-ins it loaded, written as the process exits.
    const list = join(dir.path, "modules.txt");
    const preload = join(dir.path, "modules.cjs");
    await writeFile(preload, `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join("\\n")));\n`);
    // Another build's RUN container in the runtime's state dir (as in a parallel test run): its builder is alive, so
    // a no-op has nothing to reap and must not spawn the runtime to list containers.
    const other = join(defaultStateDir("crun"), containerName(process.pid, "00000000deadbeef"));
    await mkdir(other, { recursive: true });
    let stdout: string;
    try {
      ({ stdout } = await run(process.execPath, ["-r", preload, ...args], { env }));
    } finally {
      await rm(other, { recursive: true, force: true });
    }
    expect(stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const loaded = (await readFile(list, "utf8")).split("\n");
    for (const m of ["child_process", "http", "https", "tls", "zlib"]) expect(loaded, m).not.toContain(`NativeModule ${m}`);
  });
});
