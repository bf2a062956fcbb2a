// --annotation (issue 16) in buildx's syntax through the real CLI: on the manifest (a new digest, the same image id),
// on the OCI layout's index.json and its descriptor, in a push, per platform, and bad values as usage errors.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { exec } from "../helpers/tools.js";
import { startRegistry, type RegistryServer } from "../helpers/registry-server.js";
import { formatPlatform, hostPlatform } from "../../src/image/platform.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let ctx: string;
let n = 0;
const r = (args: string[]) => tsbuild([...args, "--root", root]);
const host = formatPlatform(hostPlatform());
const other = host === "linux/amd64" ? "linux/arm64" : "linux/amd64";

async function skopeoRaw(ref: string): Promise<Record<string, unknown> & { annotations?: Record<string, string> }> {
  return JSON.parse((await exec("skopeo", ["inspect", "--raw", ref])).stdout);
}

/** index.json of an OCI layout tar. */
async function indexJson(tarFile: string): Promise<{ annotations?: Record<string, string>; manifests: { annotations?: Record<string, string> }[] }> {
  return JSON.parse((await exec("tar", ["-xOf", tarFile, "index.json"])).stdout);
}

beforeAll(async () => {
  dir = await tempDir("tsbuild-annotation-");
  root = join(dir.path, "store");
  ctx = join(dir.path, "ctx");
  await mkdir(ctx);
  await writeFile(join(ctx, "Dockerfile"), "FROM scratch\nCOPY a /a\n");
  await writeFile(join(ctx, "a"), "a\n");
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("--annotation", () => {
  it("KEY=VALUE and manifest:KEY=VALUE annotate the manifest: a new digest, the same image id; skopeo reads them", async () => {
    const plain = await r(["build", "-q", "--metadata-file", join(dir.path, "plain.json"), ctx]);
    expect(plain.code, plain.stderr).toBe(0);
    const out = join(dir.path, `m-${n++}.tar`);
    const res = await r([
      "build",
      "-q",
      "-t",
      "ann:1",
      "--annotation",
      "org.opencontainers.image.title=demo",
      "--annotation",
      "manifest:org.opencontainers.image.description=a=b",
      "--annotation",
      `manifest[${host}]:for.host=yes`,
      "--annotation",
      `manifest[${other}]:for.other=no`,
      "-o",
      `type=oci,dest=${out}`,
      ctx,
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(plain.stdout);
    const raw = await skopeoRaw(`oci-archive:${out}`);
    expect(raw.annotations).toEqual({ "org.opencontainers.image.title": "demo", "org.opencontainers.image.description": "a=b", "for.host": "yes" });
    const info = JSON.parse((await r(["inspect", "ann:1"])).stdout)[0];
    expect(info.Manifest.annotations).toMatchObject({ "org.opencontainers.image.title": "demo" });
  });

  it("index: goes on the layout's index.json, index-descriptor: and manifest-descriptor: on the image's entry; the name annotations stay", async () => {
    const out = join(dir.path, `i-${n++}.tar`);
    const res = await r([
      "build",
      "-q",
      "-t",
      "ann:2",
      "--annotation",
      "index:org.opencontainers.image.vendor=me",
      "--annotation",
      "index-descriptor,manifest-descriptor:desc.both=1",
      "--annotation",
      "manifest-descriptor:desc.only=2",
      "-o",
      `type=oci,dest=${out}`,
      ctx,
    ]);
    expect(res.code, res.stderr).toBe(0);
    const index = await indexJson(out);
    expect(index.annotations).toEqual({ "org.opencontainers.image.vendor": "me" });
    expect(index.manifests[0]?.annotations).toEqual({
      "desc.both": "1",
      "desc.only": "2",
      "io.containerd.image.name": "docker.io/library/ann:2",
      "org.opencontainers.image.ref.name": "2",
    });
    // Index annotations never reach the manifest.
    expect((await skopeoRaw(`oci-archive:${out}`)).annotations).toBeUndefined();
    // umoci reads the layout too.
    const layout = join(dir.path, `layout-${n++}`);
    await mkdir(layout);
    await exec("tar", ["-xf", out, "-C", layout]);
    expect((await exec("umoci", ["stat", "--image", `${layout}:2`])).stdout).toContain("COPY a /a");
  });

  it("a push carries the manifest's annotations", async () => {
    let reg: RegistryServer | undefined;
    try {
      reg = await startRegistry();
      const ref = `${reg.host}/team/ann:1`;
      const res = await r(["build", "-q", "--push", "-t", ref, "--annotation", "pushed.key=v", ctx]);
      expect(res.code, res.stderr).toBe(0);
      const raw = JSON.parse((await exec("skopeo", ["inspect", "--tls-verify=false", "--raw", `docker://${ref}`])).stdout);
      expect(raw.annotations).toEqual({ "pushed.key": "v" });
    } finally {
      await reg?.stop();
    }
  }, 60_000);

  it("the same annotations give the same manifest digest on a rebuild", async () => {
    const a = join(dir.path, "meta-a.json");
    const b = join(dir.path, "meta-b.json");
    expect((await r(["build", "-q", "--annotation", "k=v", "--metadata-file", a, ctx])).code).toBe(0);
    expect((await r(["build", "-q", "--annotation", "k=v", "--metadata-file", b, ctx])).code).toBe(0);
    const digest = async (f: string) => JSON.parse((await exec("cat", [f])).stdout)["containerimage.digest"];
    expect(await digest(a)).toBe(await digest(b));
  });

  it.each([
    [["--annotation", "novalue"], "expected KEY=VALUE"],
    [["--annotation", "bogus:k=v"], 'unknown annotation type "bogus"'],
    [["--annotation", "manifest[linux]:k=v"], 'invalid platform "linux"'],
    [["--annotation", "manifest:=v"], "the key is empty"],
    [["--annotation", "index:k=v"], "only an OCI layout output has an index for it"],
    [["--annotation", "index:k=v", "-o", `type=docker,dest=/dev/null`], "only an OCI layout output has an index for it"],
  ])("%j is a usage error", async (flags, message) => {
    const res = await r(["build", ...flags, ctx]);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain(message);
    expect(res.stderr).not.toContain("this is a bug");
  });

  it("is in build --help", async () => {
    expect((await tsbuild(["build", "--help"])).stdout).toContain("--annotation [TYPE:]KEY=VALUE");
  });
});
