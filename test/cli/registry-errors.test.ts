// Registry and runtime failures a user causes (no login, nothing listening, TLS trouble, a registry that hangs, no
// usable runtime state directory) against real servers on 127.0.0.1: each has its own code, the registry's own
// words where it sent some, and a hint — never "this is a bug", never "The operation was aborted".
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { PassThrough } from "node:stream";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reportError } from "../../src/cli/main.js";
import { TsbuildError } from "../../src/errors.js";
import { ensureStateDir } from "../../src/executor/oci-runtime.js";
import { createTransport } from "../../src/registry/transport.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { tempDir, tsbuild, type CliResult } from "../helpers/cli.js";
import { freePort, startRegistry, type RegistryServer } from "../helpers/registry-server.js";
import { selfSignedCert } from "../helpers/self-signed-cert.js";

const PASSWORD = "pa55-Word";
let work: { path: string; cleanup(): Promise<void> };
let reg: RegistryServer;
let root: string;
let noAuth: string;
const closers: (() => Promise<void>)[] = [];

/** Listen on 127.0.0.1; afterAll closes the server and every connection it still holds (the silent one never ends them). */
function listen(server: net.Server): Promise<number> {
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  closers.push(
    () =>
      new Promise((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  );
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));
}

/** Never "this is a bug", never Node's raw abort message: a user's mistake is reported as one. */
function expectUserError(r: CliResult, code: string, ...texts: string[]): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toContain(`[${code}]`);
  for (const t of texts) expect(r.stderr).toContain(t);
  expect(r.stderr).not.toContain("this is a bug");
  expect(r.stderr).not.toContain("The operation was aborted");
  expect(r.stderr).toMatch(/^hint: /m);
}

beforeAll(async () => {
  work = await tempDir("tsbuild-regerr-");
  reg = await startRegistry({ htpasswd: { alice: PASSWORD } });
  root = join(work.path, "store");
  noAuth = join(work.path, "no-docker-config");
  const loaded = await tsbuild(["load", "-q", "--root", root, "-i", await makeBusyboxArchive()]);
  expect(loaded.code, loaded.stderr).toBe(0);
  // A big first layer and a small second one: the small one reaches the registry (and its 401) while the big one is
  // still being compressed, which the refusal then cancels.
  const ctx = join(work.path, "ctx");
  await mkdir(ctx);
  await writeFile(join(ctx, "big"), randomBytes(24 * 1024 * 1024));
  await writeFile(join(ctx, "small"), "small\n");
  await writeFile(join(ctx, "Dockerfile"), "FROM scratch\nCOPY big /big\nCOPY small /small\n");
  const built = await tsbuild(["build", "-q", "-t", "twolayers:1", "--root", root, ctx]);
  expect(built.code, built.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  for (const c of closers) await c();
  await reg?.stop();
  await work?.cleanup();
});

describe("authentication", () => {
  it("a push without login names the registry's own message and `tsbuild login HOST`", async () => {
    const r = await tsbuild(["push", "--root", root, "twolayers:1", `${reg.host}/team/app:1`], { env: { ...process.env, DOCKER_CONFIG: noAuth } });
    expectUserError(r, "AUTH_REQUIRED", "UNAUTHORIZED: authentication required", `tsbuild login ${reg.host}`);
  }, 60_000);

  it("a push with a wrong password says the credentials were rejected", async () => {
    const cfg = join(work.path, "bad-config");
    await mkdir(cfg, { recursive: true });
    await writeFile(join(cfg, "config.json"), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from("alice:wrong").toString("base64") } } }));
    const r = await tsbuild(["push", "--root", root, "twolayers:1", `${reg.host}/team/app:1`], { env: { ...process.env, DOCKER_CONFIG: cfg } });
    expectUserError(r, "AUTH_FAILED", "rejected the stored credentials", "UNAUTHORIZED", `tsbuild login ${reg.host}`);
    expect(r.stderr).not.toContain("wrong");
  }, 60_000);
});

describe("connections", () => {
  it("a port with nothing listening is CONNECTION_REFUSED naming host:port", async () => {
    const port = await freePort();
    const r = await tsbuild(["push", "--root", root, "twolayers:1", `127.0.0.1:${port}/team/app:1`], { env: { ...process.env, DOCKER_CONFIG: noAuth } });
    expectUserError(r, "CONNECTION_REFUSED", `127.0.0.1:${port}: connection refused`, "is the registry running");
  });

  it("a registry that accepts and never answers is a TIMEOUT with a hint, not an abort", async () => {
    const port = await listen(net.createServer((s) => s.on("error", () => undefined)));
    const started = Date.now();
    const r = await tsbuild(["pull", "--root", root, `127.0.0.1:${port}/team/app:1`], {
      env: { ...process.env, DOCKER_CONFIG: noAuth, TSBUILD_REGISTRY_TIMEOUT: "0.5" },
    });
    expectUserError(r, "TIMEOUT", `the registry at 127.0.0.1:${port} did not answer in time`, "TSBUILD_REGISTRY_TIMEOUT");
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it("a bad TSBUILD_REGISTRY_TIMEOUT is a usage error", async () => {
    const r = await tsbuild(["pull", "--root", root, `127.0.0.1:1/x:1`], { env: { ...process.env, TSBUILD_REGISTRY_TIMEOUT: "soon" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("TSBUILD_REGISTRY_TIMEOUT=soon");
  });
});

describe("TLS", () => {
  let plainPort: number;
  let selfSignedPort: number;
  beforeAll(async () => {
    plainPort = await listen(http.createServer((_q, res) => res.end("{}")));
    const { key, cert } = await selfSignedCert(work.path, "127.0.0.1", "IP:127.0.0.1");
    const { readFile } = await import("node:fs/promises");
    selfSignedPort = await listen(https.createServer({ key: await readFile(key), cert: await readFile(cert) }, (_q, res) => res.end("{}")));
  });

  async function failure(url: string): Promise<TsbuildError> {
    const t = createTransport();
    try {
      await t.request({ method: "GET", url: new URL(url) });
    } catch (e) {
      return e as TsbuildError;
    } finally {
      t.close();
    }
    throw new Error(`${url} answered`);
  }

  it("HTTPS to a plain HTTP server says so and hints --insecure-registry", async () => {
    const e = await failure(`https://127.0.0.1:${plainPort}/v2/`);
    expect(e).toBeInstanceOf(TsbuildError);
    expect(e.code).toBe("TLS_ERROR");
    expect(e.message).toBe(`the registry at 127.0.0.1:${plainPort} does not speak HTTPS (it answered the TLS handshake with plain HTTP)`);
    expect(e.hint).toBe(`if the registry speaks plain HTTP, pass --insecure-registry 127.0.0.1:${plainPort}`);
  });

  it("a self-signed certificate names the problem and how to trust it", async () => {
    const e = await failure(`https://127.0.0.1:${selfSignedPort}/v2/`);
    expect(e.code).toBe("TLS_ERROR");
    expect(e.message).toContain(`the certificate of the registry at 127.0.0.1:${selfSignedPort} is not trusted: self-signed certificate`);
    expect(e.hint).toContain("NODE_EXTRA_CA_CERTS");
    expect(e.hint).toContain(`--insecure-registry 127.0.0.1:${selfSignedPort}`);
  });

  it("through the CLI: a registry whose token endpoint is HTTPS on a plain HTTP server", async () => {
    const fake = http.createServer((_q, res) => {
      res.writeHead(401, { "www-authenticate": `Bearer realm="https://127.0.0.1:${plainPort}/token",service="test"`, "content-type": "application/json" });
      res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
    });
    const port = await listen(fake);
    const r = await tsbuild(["pull", "--root", root, `127.0.0.1:${port}/team/app:1`], { env: { ...process.env, DOCKER_CONFIG: noAuth } });
    expectUserError(r, "TLS_ERROR", `127.0.0.1:${plainPort} does not speak HTTPS`, "--insecure-registry");
  });
});

describe("how errors are printed", () => {
  function report(e: unknown, debug: boolean): { code: number; text: string } {
    const err = new PassThrough();
    const chunks: Buffer[] = [];
    err.on("data", (c: Buffer) => chunks.push(c));
    const code = reportError(e, { stdout: new PassThrough(), stderr: err, isTTY: false, cwd: work.path, env: process.env }, debug, false);
    return { code, text: Buffer.concat(chunks).toString() };
  }

  it("a runtime state directory that cannot be made has its own code and hint", async () => {
    const file = join(work.path, "not-a-dir");
    await writeFile(file, "x");
    const e = await ensureStateDir("crun", join(file, "crun")).then(
      () => undefined,
      (x: unknown) => x,
    );
    const { code, text } = report(e, false);
    expect(code).toBe(1);
    expect(text).toContain(
      `error: crun cannot keep its container state in ${join(file, "crun")}: a component of the path is not a directory [RUNTIME_STATE_DIR]`,
    );
    expect(text).toContain("hint: RUN with crun needs a writable");
    expect(text).not.toContain("this is a bug");
  });

  it("an internal error keeps the bug hint, and --debug prints its stack instead", () => {
    const plain = report(new TypeError("x is not a function"), false);
    expect(plain.text).toContain("error: x is not a function");
    expect(plain.text).toContain("this is a bug in tsbuild");
    const debug = report(new TypeError("x is not a function"), true);
    expect(debug.text).toMatch(/TypeError: x is not a function\n\s+at /);
  });
});
