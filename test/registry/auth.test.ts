// Authentication against real docker-registry instances: htpasswd (Basic) and token auth (Bearer JWTs from the
// test token server), credentials from $DOCKER_CONFIG/config.json written by `tsbuild login`, and failures that
// are clear and never show the password.
import { readFile, stat, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEngine } from "../../src/engine.js";
import { pullImage, pushImage } from "../../src/registry/index.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { tempDir, tsbuild, tsbuildProcess } from "../helpers/cli.js";
import { startRegistry, type RegistryServer } from "../helpers/registry-server.js";
import { startTokenServer, type TokenServer } from "../helpers/token-server.js";

const PASSWORD = "s3cret-Pa55word!";
const WRONG = "wr0ng-Pa55word?";

let work: { path: string; cleanup(): Promise<void> };
let basicReg: RegistryServer;
let tokens: TokenServer;
let tokenReg: RegistryServer;
let seeded: string;
let n = 0;
const fresh = (p: string) => join(work.path, `${p}-${++n}`);

async function configWith(host: string, user: string, pass: string): Promise<string> {
  const dir = fresh("docker");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "config.json"), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${pass}`).toString("base64") } }, credsStore: "" }));
  return dir;
}

beforeAll(async () => {
  work = await tempDir("tsbuild-regauth-");
  tokens = await startTokenServer({ users: { alice: PASSWORD } });
  [basicReg, tokenReg] = await Promise.all([startRegistry({ htpasswd: { alice: PASSWORD } }), startRegistry({ token: tokens })]);
  // A local image to push: busybox loaded from an archive.
  seeded = fresh("seed");
  const r = await tsbuild(["load", "-q", "--root", seeded, "-i", await makeBusyboxArchive()]);
  if (r.code !== 0) throw new Error(r.stderr);
});

afterAll(async () => {
  await basicReg?.stop();
  await tokenReg?.stop();
  await tokens?.stop();
  await work?.cleanup();
});

describe("Basic auth (htpasswd)", () => {
  it("push and pull with credentials from the Docker config file", async () => {
    const env = { ...process.env, DOCKER_CONFIG: await configWith(basicReg.host, "alice", PASSWORD) };
    const pushed = await pushImage(openEngine({ root: seeded }), "busybox:local", `${basicReg.host}/private/bb:1`, { env });
    const pulled = await pullImage(openEngine({ root: fresh("store") }), `${basicReg.host}/private/bb:1`, { env });
    expect(pulled.remoteDigest).toBe(pushed.digest);
  });

  it("fails clearly without credentials and with a wrong password, never printing it", async () => {
    const none = await tsbuild(["pull", "--root", fresh("store"), `${basicReg.host}/private/bb:1`], { env: { ...process.env, DOCKER_CONFIG: fresh("empty") } });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("AUTH_REQUIRED");
    expect(none.stderr).toContain(`tsbuild login ${basicReg.host}`);
    const wrong = await tsbuild(["pull", "--root", fresh("store"), `${basicReg.host}/private/bb:1`], {
      env: { ...process.env, DOCKER_CONFIG: await configWith(basicReg.host, "alice", WRONG) },
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("AUTH_FAILED");
    expect(wrong.stderr).toContain(`tsbuild login ${basicReg.host}`);
    expect(wrong.stderr + wrong.stdout).not.toContain(WRONG);
    expect(wrong.stderr).not.toContain(Buffer.from(`alice:${WRONG}`).toString("base64"));
  });

  it("login checks the password, writes config.json with mode 0600, logout removes the entry", async () => {
    const dockerConfig = fresh("docker");
    const env = { ...process.env, DOCKER_CONFIG: dockerConfig };
    const bad = await tsbuildProcess(["login", "-u", "alice", "--password-stdin", basicReg.host], { env, input: `${WRONG}\n` });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("AUTH_FAILED");
    expect(bad.stderr + bad.stdout).not.toContain(WRONG);
    await expect(stat(join(dockerConfig, "config.json"))).rejects.toThrow();

    const ok = await tsbuildProcess(["login", "-u", "alice", "--password-stdin", basicReg.host], { env, input: `${PASSWORD}\n` });
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("Login Succeeded");
    expect(ok.stdout + ok.stderr).not.toContain(PASSWORD);
    const file = join(dockerConfig, "config.json");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const cfg = JSON.parse(await readFile(file, "utf8")) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(cfg.auths[basicReg.host]!.auth, "base64").toString()).toBe(`alice:${PASSWORD}`);

    const pulled = await tsbuild(["pull", "-q", "--root", fresh("store"), `${basicReg.host}/private/bb:1`], { env });
    expect(pulled.code).toBe(0);

    const out = await tsbuild(["logout", basicReg.host], { env });
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`Removing login credentials for ${basicReg.host}`);
    const after = JSON.parse(await readFile(file, "utf8")) as { auths: Record<string, unknown> };
    expect(after.auths[basicReg.host]).toBeUndefined();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});

describe("Bearer tokens (token server)", () => {
  it("push and pull through the token flow, one token per scope set", async () => {
    const env = { ...process.env, DOCKER_CONFIG: await configWith(tokenReg.host, "alice", PASSWORD) };
    const before = tokens.requests.length;
    const pushed = await pushImage(openEngine({ root: seeded }), "busybox:local", `${tokenReg.host}/team/bb:1`, { env });
    const pushReqs = tokens.requests.slice(before);
    expect(pushReqs.length).toBe(1);
    expect(pushReqs[0]).toEqual({ scopes: ["repository:team/bb:pull,push"], user: "alice", service: tokens.service });

    const mid = tokens.requests.length;
    const pulled = await pullImage(openEngine({ root: fresh("store") }), `${tokenReg.host}/team/bb:1`, { env });
    expect(pulled.remoteDigest).toBe(pushed.digest);
    const pullReqs = tokens.requests.slice(mid);
    expect(pullReqs.map((r) => r.scopes)).toEqual([["repository:team/bb:pull"]]);
  });

  it("a wrong password is refused by the token server with a clear message", async () => {
    const r = await tsbuild(["pull", "--root", fresh("store"), `${tokenReg.host}/team/bb:1`], {
      env: { ...process.env, DOCKER_CONFIG: await configWith(tokenReg.host, "alice", WRONG) },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("AUTH_FAILED");
    expect(r.stderr).toContain("token server");
    expect(r.stderr).toContain(`tsbuild login ${tokenReg.host}`);
    expect(r.stderr).not.toContain(WRONG);
  });

  it("login against a token registry", async () => {
    const env = { ...process.env, DOCKER_CONFIG: fresh("docker") };
    const ok = await tsbuildProcess(["login", "-u", "alice", "--password-stdin", tokenReg.host], { env, input: PASSWORD });
    expect(ok.code).toBe(0);
    const bad = await tsbuildProcess(["login", "-u", "alice", "--password-stdin", tokenReg.host], { env, input: WRONG });
    expect(bad.code).toBe(1);
    expect(bad.stderr).not.toContain(WRONG);
  });
});
