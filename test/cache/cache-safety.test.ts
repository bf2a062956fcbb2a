// --cache-to never destroys what is already there: a local export merges into an OCI layout's index.json by tag and
// refuses a tag held by an image; a registry export refuses a tag that is not a tsbuild cache and reports auth
// failures and 5xx instead of pushing over them; a --cache-from that cannot be read is a warning, never silent.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { tsbuild, tempDir } from "../helpers/cli.js";
import { exec } from "../helpers/tools.js";
import { storeWithBusybox } from "../helpers/busybox-image.js";
import { startRegistry, type RegistryServer } from "../helpers/registry-server.js";
import { startProxy, type TestProxy } from "../registry/proxy.js";
import { openEngine } from "../../src/engine.js";
import { writeLocalCache } from "../../src/cache/local-cache.js";

interface IndexEntry {
  mediaType: string;
  digest: string;
  artifactType?: string;
  annotations?: Record<string, string>;
}

let work: { path: string; cleanup(): Promise<void> };
let project: string;
let storeA: string;
let n = 0;

const fresh = (name: string) => storeWithBusybox(join(work.path, name));
const readIndex = async (dir: string) => JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as { manifests: IndexEntry[] };
const refName = (e: IndexEntry) => e.annotations?.["org.opencontainers.image.ref.name"];
const skopeoDigest = async (ref: string, ...flags: string[]) =>
  (JSON.parse((await exec("skopeo", ["inspect", ...flags, ref])).stdout) as { Digest: string }).Digest;
/** The digest of the manifest under a ref, read with `skopeo inspect --raw` (which also reads non-image artifacts). */
const rawDigest = async (ref: string, ...flags: string[]) =>
  `sha256:${createHash("sha256")
    .update((await exec("skopeo", ["inspect", "--raw", ...flags, ref])).stdout)
    .digest("hex")}`;
const listing = async (dir: string) => (await readdir(join(dir, "blobs/sha256"))).sort();

async function build(root: string, extra: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string; cached: boolean[] }> {
  const meta = join(work.path, `meta-${++n}.json`);
  const res = await tsbuild(["build", "--progress", "plain", "--root", root, "--metadata-file", meta, ...extra, project], env ? { env } : {});
  if (res.code !== 0) return { code: res.code, stderr: res.stderr, cached: [] };
  const m = JSON.parse(await readFile(meta, "utf8")) as { "tsbuild.cache": { steps: { cached: boolean }[] } };
  return { code: 0, stderr: res.stderr, cached: m["tsbuild.cache"].steps.map((s) => s.cached) };
}

async function ok(root: string, extra: string[], env?: NodeJS.ProcessEnv) {
  const r = await build(root, extra, env);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

beforeAll(async () => {
  work = await tempDir("tsbuild-cachesafety-");
  storeA = await fresh("store-a");
  project = join(work.path, "app");
  await mkdir(project, { recursive: true });
  await writeFile(join(project, "a.txt"), "a\n");
  await writeFile(join(project, "Dockerfile"), "FROM busybox:local\nCOPY a.txt /a.txt\nRUN cat /a.txt /a.txt > /b\n");
});

afterAll(async () => {
  await work?.cleanup();
});

describe("--cache-to type=local into an OCI image layout", () => {
  it("keeps the image in index.json (skopeo still reads it) and the cache imports", async () => {
    const layout = join(work.path, "layout");
    await ok(storeA, ["-t", "app:1", "-o", `type=oci,dest=${layout},tar=false`]);
    const before = await readIndex(layout);
    const imageDigest = await skopeoDigest(`oci:${layout}:1`);
    await ok(storeA, ["--cache-to", `type=local,dest=${layout},mode=max`]);
    // Twice: the second export merges with the first and still keeps the image.
    await ok(storeA, ["--cache-to", `type=local,dest=${layout},mode=max`]);
    const after = await readIndex(layout);
    for (const e of before.manifests) expect(after.manifests).toContainEqual(e);
    expect(after.manifests.filter((e) => refName(e) === "cache")).toHaveLength(1);
    expect(after.manifests).toHaveLength(before.manifests.length + 1);
    expect(await skopeoDigest(`oci:${layout}:1`)).toBe(imageDigest);
    const b = await ok(await fresh("store-b"), ["--cache-from", `type=local,src=${layout}`]);
    expect(b.cached).toEqual([true, true]);
  });

  it("refuses a tag held by an image, writing nothing; tag= gives the cache an entry of its own", async () => {
    const layout = join(work.path, "layout-cache-tag");
    await ok(storeA, ["-t", "app:cache", "-o", `type=oci,dest=${layout},tar=false`]);
    const indexBytes = await readFile(join(layout, "index.json"));
    const blobs = await listing(layout);
    const refused = await build(storeA, ["--cache-to", `type=local,dest=${layout}`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(layout);
    expect(refused.stderr).toMatch(/holds an image under the tag "cache".*not a tsbuild cache; nothing was written/);
    expect(refused.stderr).toMatch(/tag=buildcache/);
    // Refused before the build, not after it.
    expect(refused.stderr).not.toMatch(/RUN cat/);
    // The exporter itself refuses too (the CLI's early check aside), before writing a blob.
    await expect(writeLocalCache(layout, openEngine({ root: storeA }).content, { v: 1, steps: [], images: [] })).rejects.toMatchObject({ code: "NOT_A_CACHE" });
    expect(await readFile(join(layout, "index.json"))).toEqual(indexBytes);
    expect(await listing(layout)).toEqual(blobs);

    // --cache-from at the image's tag: a warning, and the build goes on without it.
    const from = await ok(await fresh("store-c"), ["--cache-from", `type=local,src=${layout}`]);
    expect(from.stderr).toMatch(/WARNING: --cache-from type=local,src=.*cannot import the cache: .*not a tsbuild cache/);
    expect(from.stderr).not.toMatch(/nothing was written/);
    expect(from.cached).toEqual([false, false]);

    await ok(storeA, ["--cache-to", `type=local,dest=${layout},tag=buildcache,mode=max`]);
    const after = await readIndex(layout);
    expect(after.manifests.map(refName).sort()).toEqual(["buildcache", "cache"]);
    await skopeoDigest(`oci:${layout}:cache`);
    const d = await ok(await fresh("store-d"), ["--cache-from", `type=local,src=${layout},tag=buildcache`]);
    expect(d.cached).toEqual([true, true]);
  });

  it("an index.json that is not JSON: --cache-to refuses, --cache-from warns", async () => {
    const dir = join(work.path, "broken");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "index.json"), "{ not json");
    const to = await build(storeA, ["--cache-to", `type=local,dest=${dir}`]);
    expect(to.code).not.toBe(0);
    expect(to.stderr).toMatch(/index\.json is not valid JSON/);
    expect(await readFile(join(dir, "index.json"), "utf8")).toBe("{ not json");
    expect(await readdir(dir)).toEqual(["index.json"]);
    const from = await ok(storeA, ["--cache-from", `type=local,src=${dir}`]);
    expect(from.stderr).toMatch(/WARNING: --cache-from .*cannot import the cache: .*index\.json is not valid JSON/);
  });
});

describe("--cache-to type=registry onto what is not a cache", () => {
  let reg: RegistryServer;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("an image tag is refused and stays the image; --cache-from of it is a warning", async () => {
    const image = `${reg.host}/team/app:1`;
    const pushed = await tsbuild(["push", "--root", storeA, "busybox:local", image]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const digest = await skopeoDigest(`docker://${image}`, "--tls-verify=false");
    const refused = await build(storeA, ["--cache-to", `type=registry,ref=${image}`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/team\/app:1 is an image, not a tsbuild cache; nothing was pushed/);
    expect(refused.stderr).toMatch(/-cache|:buildcache/);
    expect(await skopeoDigest(`docker://${image}`, "--tls-verify=false")).toBe(digest);

    const from = await ok(await fresh("store-e"), ["--cache-from", `type=registry,ref=${image}`]);
    expect(from.stderr).toMatch(/WARNING: --cache-from type=registry.*cannot import the cache: .*is an image, not a tsbuild cache/);

    // A tag of its own works, and merges on the second export.
    const cacheRef = `${reg.host}/team/app:buildcache`;
    await ok(storeA, ["--cache-to", `type=registry,ref=${cacheRef},mode=max`]);
    await ok(storeA, ["--cache-to", `type=registry,ref=${cacheRef},mode=max`]);
    const hit = await ok(await fresh("store-f"), ["--cache-from", `type=registry,ref=${cacheRef}`]);
    expect(hit.cached).toEqual([true, true]);
  });

  it("a 500 for the cache tag is an error and nothing is pushed", async () => {
    let proxy: TestProxy | undefined;
    try {
      proxy = await startProxy(reg.port);
      proxy.canned.set("/v2/team/five/manifests/cache", {
        status: 500,
        headers: { "content-type": "application/json" },
        body: '{"errors":[{"code":"UNKNOWN","message":"backend down"}]}',
      });
      const r = await build(storeA, ["--cache-to", `type=registry,ref=${proxy.host}/team/five:cache`]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/answered 500/);
      const writes = proxy.log.filter((e) => e.method !== "GET" && e.method !== "HEAD");
      expect(writes).toEqual([]);
      // --cache-from through the same 500: a warning, the build succeeds.
      const from = await ok(storeA, ["--cache-from", `type=registry,ref=${proxy.host}/team/five:cache`]);
      expect(from.stderr).toMatch(/WARNING: --cache-from .*cannot import the cache: .*answered 500/);
    } finally {
      await proxy?.stop();
    }
  });
});

describe("--cache-to type=registry with bad credentials", () => {
  let reg: RegistryServer;
  const PASSWORD = "s3cret-pass";
  const configWith = async (name: string, pass: string) => {
    const dir = join(work.path, name);
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, "config.json"),
      JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`alice:${pass}`).toString("base64") } }, credsStore: "" }),
    );
    return { ...process.env, DOCKER_CONFIG: dir };
  };
  beforeAll(async () => {
    reg = await startRegistry({ htpasswd: { alice: PASSWORD } });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("is a registry authentication error, not a silent overwrite; --cache-from with them is a warning", async () => {
    const good = await configWith("docker-good", PASSWORD);
    const wrong = await configWith("docker-wrong", "wrong-pass");
    const cacheRef = `${reg.host}/team/app:buildcache`;
    await ok(storeA, ["--cache-to", `type=registry,ref=${cacheRef},mode=max`], good);
    const digest = await rawDigest(`docker://${cacheRef}`, "--tls-verify=false", "--creds", `alice:${PASSWORD}`);
    const r = await build(storeA, ["--cache-to", `type=registry,ref=${cacheRef}`], wrong);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/authentication|credentials|denied|unauthorized/i);
    expect(r.stderr).toContain(reg.host);
    expect(await rawDigest(`docker://${cacheRef}`, "--tls-verify=false", "--creds", `alice:${PASSWORD}`)).toBe(digest);
    const from = await ok(await fresh("store-g"), ["--cache-from", `type=registry,ref=${cacheRef}`], wrong);
    expect(from.stderr).toMatch(/WARNING: --cache-from type=registry.*cannot import the cache/);
    expect(from.cached).toEqual([false, false]);
    const hit = await ok(await fresh("store-h"), ["--cache-from", `type=registry,ref=${cacheRef}`], good);
    expect(hit.cached).toEqual([true, true]);
  });
});
