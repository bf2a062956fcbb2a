// Start-up of the CLI as shipped (dist/bundle): the one-file bundle runs from a V8 code cache V8 accepts, a bundle
// edited after its cache still runs, a no-op rebuild loads none of the built-ins it does not need, and bin.js run as
// a program reads NODE_EXTRA_CA_CERTS at its first TLS connection, not at start-up.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cp, mkdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { containerName } from "../../src/executor/orphan-containers.js";
import { defaultStateDir } from "../../src/executor/runtime-cli.js";
import { execFile } from "node:child_process";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { promisify } from "node:util";
import { join } from "node:path";
import { BIN, tempDir } from "../helpers/cli.js";
import { storeWithBusybox } from "../helpers/busybox-image.js";
import { selfSignedCert } from "../helpers/self-signed-cert.js";

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

  describe("NODE_EXTRA_CA_CERTS through bin.js as a program", () => {
    // As npm's bin link runs it: the file itself, through its shell line.
    const asProgram = (args: string[], env: NodeJS.ProcessEnv) => run(BIN, args, { env: { ...withoutNodeOptions(), ...env } });
    const withoutNodeOptions = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "NODE_OPTIONS" && k !== "NODE_EXTRA_CA_CERTS"));

    it("is not read by a command that makes no TLS connection", async () => {
      const env = { NODE_EXTRA_CA_CERTS: join(dir.path, "no-such-ca.pem") };
      // Node itself reads it before any JavaScript and warns about the missing file: the test would see that.
      const direct = await run(process.execPath, [BIN, "--version"], { env: { ...withoutNodeOptions(), ...env } });
      expect(direct.stderr).toContain("Ignoring extra certs");
      const { stdout, stderr } = await asProgram(["--version"], env);
      expect(stdout).toBe("tsbuild 0.1.0\n");
      expect(stderr).toBe("");
    });

    it("is trusted by an https download and stays in the build's environment", async () => {
      const tls = await selfSignedCert(dir.path, "127.0.0.1", "IP:127.0.0.1");
      const server = https.createServer({ key: await readFile(tls.key), cert: await readFile(tls.cert) }, (_req, res) => res.end("over tls\n"));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        const port = (server.address() as AddressInfo).port;
        const project = join(dir.path, "tls-project");
        await mkdir(project, { recursive: true });
        await writeFile(
          join(project, "Dockerfile"),
          `FROM scratch\nARG NODE_EXTRA_CA_CERTS\nLABEL ca=$NODE_EXTRA_CA_CERTS\nADD https://127.0.0.1:${port}/f.txt /f.txt\n`,
        );
        const root = join(dir.path, "tls-store");
        const build = ["build", "-q", "--root", root, "--build-arg", "NODE_EXTRA_CA_CERTS", "-t", "tls:1", project];
        // Without the certificate the download fails, so the success below is the deferred trust's doing.
        await expect(asProgram(build, {})).rejects.toThrow(/certificate/i);
        await asProgram(build, { NODE_EXTRA_CA_CERTS: tls.cert });
        const { stdout } = await asProgram(["inspect", "--root", root, "--format", "{{json .Config.Labels}}", "tls:1"], {});
        expect(JSON.parse(stdout)).toEqual({ ca: tls.cert });
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });
});
