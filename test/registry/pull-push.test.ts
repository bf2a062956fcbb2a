// Pull and push against a real docker-registry (anonymous, plain HTTP on 127.0.0.1): multi-layer images pushed by
// skopeo, a two-platform index, push checked with skopeo inspect and a pull-back, verification of corrupt blobs
// (through a byte-flipping proxy), skipping of present layers, Range resume, and the error messages.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEngine } from "../../src/engine.js";
import { RegistryError } from "../../src/errors.js";
import { pullImage, pushImage } from "../../src/registry/index.js";
import type { ImageConfig, Manifest } from "../../src/image/types.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { startRegistry, type RegistryServer } from "../helpers/registry-server.js";
import { exec } from "../helpers/tools.js";
import { pushMultiLayerImage, pushTwoPlatformIndex, type PushedFixture } from "./fixtures.js";
import { startProxy, type TestProxy } from "./proxy.js";

let reg: RegistryServer;
let proxy: TestProxy;
let work: { path: string; cleanup(): Promise<void> };
let multi: PushedFixture;
let platforms: Awaited<ReturnType<typeof pushTwoPlatformIndex>>;
let n = 0;
const freshRoot = () => join(work.path, `store-${++n}`);

async function blobsIn(root: string): Promise<string[]> {
  try {
    return (await readdir(join(root, "blobs", "sha256"))).sort();
  } catch {
    return [];
  }
}

async function layerFile(root: string, manifestDigest: string, name: string): Promise<boolean> {
  const e = openEngine({ root });
  const m = await e.content.readJson<Manifest>(manifestDigest as `sha256:${string}`);
  for (const l of m.layers) {
    const { stdout } = await exec("tar", ["-tf", e.content.path(l.digest)]);
    if (stdout.split("\n").some((p) => p.replace(/^\.\//, "") === name)) return true;
  }
  return false;
}

beforeAll(async () => {
  work = await tempDir("tsbuild-reg-");
  reg = await startRegistry();
  proxy = await startProxy(reg.port);
  [multi, platforms] = await Promise.all([
    pushMultiLayerImage(work.path, `${reg.host}/team/multi:1`),
    pushTwoPlatformIndex(work.path, `${reg.host}/team/platforms:1`),
  ]);
});

afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
  await work?.cleanup();
});

describe("pull", () => {
  it("pulls a multi-layer image pushed by skopeo, stored uncompressed with the registry's config", async () => {
    const root = freshRoot();
    const r = await tsbuild(["pull", "--root", root, `${reg.host}/team/multi:1`]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${reg.host}/team/multi:1`);
    const e = openEngine({ root });
    const rec = await e.images.get(`${reg.host}/team/multi:1`);
    expect(rec).toBeDefined();
    const m = await e.content.readJson<Manifest>(rec!.target.digest);
    expect(m.config.digest).toBe(multi.config);
    expect(m.layers.map((l) => l.digest)).toEqual(multi.diffIds);
    expect(m.layers.every((l) => l.mediaType === "application/vnd.oci.image.layer.v1.tar")).toBe(true);
    expect(multi.diffIds.length).toBe(3);
    const cfg = await e.content.readJson<ImageConfig>(m.config.digest);
    expect(cfg.rootfs.diff_ids).toEqual(multi.diffIds);
    // Layers are the uncompressed tars (blob = diff_id): GNU tar lists them.
    expect(await layerFile(root, rec!.target.digest, "data/layer-1.bin")).toBe(true);
    expect(await layerFile(root, rec!.target.digest, "bin/busybox")).toBe(true);
  });

  it("picks the host platform from an index, and --platform picks the other", async () => {
    const root = freshRoot();
    const e = openEngine({ root });
    const host = await pullImage(e, `${reg.host}/team/platforms:1`);
    expect(host.config).toBe(platforms.amd64.config);
    expect(await layerFile(root, host.manifest.digest, "arch")).toBe(true);
    const r = await tsbuild(["pull", "--root", root, "--platform", "linux/arm64", `${reg.host}/team/platforms:1`]);
    expect(r.code).toBe(0);
    // The name now holds both platforms: a local index over the two pulled manifests.
    const rec = await e.images.get(`${reg.host}/team/platforms:1`);
    expect(rec!.target.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    const index = await e.content.readJson<{ manifests: { digest: `sha256:${string}`; platform: unknown }[] }>(rec!.target.digest);
    expect(index.manifests.map((d) => d.platform)).toEqual([
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64" },
    ]);
    const m = await e.content.readJson<Manifest>(index.manifests[1]!.digest);
    expect(m.config.digest).toBe(platforms.arm64.config);
    const cfg = await e.content.readJson<ImageConfig>(m.config.digest);
    expect(cfg.architecture).toBe("arm64");
    // Pulling the host platform again replaces its entry and keeps arm64's.
    await pullImage(e, `${reg.host}/team/platforms:1`);
    const again = await e.content.readJson<{ manifests: unknown[] }>((await e.images.get(`${reg.host}/team/platforms:1`))!.target.digest);
    expect(again.manifests).toHaveLength(2);
    const bad = await tsbuild(["pull", "--root", root, "--platform", "linux/s390x", `${reg.host}/team/platforms:1`]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("NO_MATCHING_PLATFORM");
    expect(bad.stderr).toContain("linux/amd64, linux/arm64/v8");
  });

  it("pulls by digest without resolving the tag, verifying the manifest digest", async () => {
    const root = freshRoot();
    const e = openEngine({ root });
    const first = await pullImage(e, `${reg.host}/team/multi:1`);
    const byDigest = await pullImage(openEngine({ root: freshRoot() }), `${reg.host}/team/multi@${first.remoteDigest}`);
    expect(byDigest.config).toBe(multi.config);
    expect(byDigest.name).toBe(`${reg.host}/team/multi@${first.remoteDigest}`);
    const before = proxy.log.length;
    await pullImage(openEngine({ root: freshRoot() }), `${proxy.host}/team/multi:1@${first.remoteDigest}`);
    const manifestGets = proxy.log.slice(before).filter((l) => l.path.includes("/manifests/"));
    expect(manifestGets.map((l) => l.path)).toEqual([`/v2/team/multi/manifests/${first.remoteDigest}`]);
  });

  it("rejects a corrupted layer and stores nothing", async () => {
    const root = freshRoot();
    const regManifest = JSON.parse(
      await (await fetch(`${reg.url}/v2/team/multi/manifests/1`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })).text(),
    ) as Manifest;
    const victim = regManifest.layers[1]!.digest;
    proxy.corrupt.add(victim);
    try {
      const r = await tsbuild(["pull", "--root", root, `${proxy.host}/team/multi:1`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/DIGEST_MISMATCH|DOWNLOAD_FAILED|CORRUPT/);
      expect(r.stderr).toContain("layer 2");
    } finally {
      proxy.corrupt.delete(victim);
    }
    expect(await blobsIn(root)).toEqual([]);
    expect(await readdir(join(root, "tmp")).catch(() => [])).toEqual([]);
    expect(await openEngine({ root }).images.list()).toEqual([]);
  });

  it("does not download layers whose diff_id is already in the store", async () => {
    const root = freshRoot();
    const e = openEngine({ root });
    // busybox (the base layer of team/multi) loaded from an archive first
    const load = await tsbuild(["load", "-q", "--root", root, "-i", await makeBusyboxArchive()]);
    expect(load.code).toBe(0);
    const regManifest = JSON.parse(
      await (await fetch(`${reg.url}/v2/team/multi/manifests/1`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })).text(),
    ) as Manifest;
    const before = proxy.log.length;
    const r = await pullImage(e, `${proxy.host}/team/multi:1`);
    expect(r.downloaded).toBe(2);
    const gets = proxy.log.slice(before).filter((l) => l.method === "GET" && l.path.includes("/blobs/"));
    expect(gets.some((l) => l.path.endsWith(regManifest.layers[0]!.digest))).toBe(false);
    expect(gets.filter((l) => l.path.endsWith(regManifest.layers[2]!.digest)).length).toBe(1);
    // A second pull downloads no layer at all.
    const again = proxy.log.length;
    expect((await pullImage(e, `${proxy.host}/team/multi:1`)).downloaded).toBe(0);
    expect(
      proxy.log.slice(again).filter((l) => l.method === "GET" && l.path.includes("/blobs/") && l.path !== `/v2/team/multi/blobs/${regManifest.config.digest}`),
    ).toEqual([]);
  });

  it("resumes a dropped layer download with a Range request", async () => {
    const root = freshRoot();
    const regManifest = JSON.parse(
      await (await fetch(`${reg.url}/v2/team/multi/manifests/1`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })).text(),
    ) as Manifest;
    const layer = regManifest.layers[2]!;
    proxy.dropOnce.set(layer.digest, Math.floor(layer.size / 2));
    const before = proxy.log.length;
    const r = await pullImage(openEngine({ root }), `${proxy.host}/team/multi:1`);
    expect(r.config).toBe(multi.config);
    const gets = proxy.log.slice(before).filter((l) => l.path.endsWith(layer.digest));
    expect(gets.length).toBe(2);
    expect(gets[1]!.range).toBe(`bytes=${Math.floor(layer.size / 2)}-`);
    expect(gets[1]!.status).toBe(206);
  });

  it("rejects schema 1 manifests with a clear error", async () => {
    proxy.canned.set("/v2/old/img/manifests/1", {
      status: 200,
      headers: { "content-type": "application/vnd.docker.distribution.manifest.v1+prettyjws" },
      body: JSON.stringify({ schemaVersion: 1, name: "old/img", tag: "1", fsLayers: [], history: [] }),
    });
    const r = await tsbuild(["pull", "--root", freshRoot(), `${proxy.host}/old/img:1`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("UNSUPPORTED_MANIFEST");
    expect(r.stderr).toContain("schema 1");
  });

  it("names the reference, the host or the input in its errors", async () => {
    const root = freshRoot();
    const missing = await tsbuild(["pull", "--root", root, `${reg.host}/team/multi:nope`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("IMAGE_NOT_FOUND");
    expect(missing.stderr).toContain(`${reg.host}/team/multi:nope`);
    const norepo = await tsbuild(["pull", "--root", root, `${reg.host}/no/such:1`]);
    expect(norepo.stderr).toContain("IMAGE_NOT_FOUND");
    // a port nothing listens on
    const refused = await tsbuild(["pull", "--root", root, "127.0.0.1:1/x:1"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("CONNECTION_REFUSED");
    expect(refused.stderr).toContain("127.0.0.1:1");
    const bad = await tsbuild(["pull", "--root", root, "Bad//Name"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("INVALID_REFERENCE");
    expect(bad.stderr).toContain('"Bad//Name"');
    await expect(pullImage(openEngine({ root }), `${reg.host}/team/multi:nope`)).rejects.toBeInstanceOf(RegistryError);
  });
});

describe("push", () => {
  it("pushes a loaded image; skopeo inspect sees it and a pull into an empty store gives the same config", async () => {
    const root = freshRoot();
    expect((await tsbuild(["load", "-q", "--root", root, "-i", await makeBusyboxArchive()])).code).toBe(0);
    const r = await tsbuild(["push", "--root", root, "busybox:local", `${reg.host}/pushed/bb:1`]);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(r.stdout)?.[1];
    expect(digest).toBeDefined();
    const { stdout } = await exec("skopeo", ["inspect", "--tls-verify=false", `docker://${reg.host}/pushed/bb:1`]);
    const info = JSON.parse(stdout) as { Digest: string; Layers: string[]; Architecture: string };
    expect(info.Digest).toBe(digest);
    expect(info.Layers).toHaveLength(1);
    const raw = JSON.parse((await exec("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/pushed/bb:1`])).stdout) as Manifest;
    expect(raw.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(raw.layers[0]!.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");

    const local = openEngine({ root });
    const localM = await local.content.readJson<Manifest>((await local.images.get("docker.io/library/busybox:local"))!.target.digest);
    const back = await pullImage(openEngine({ root: freshRoot() }), `${reg.host}/pushed/bb:1`);
    expect(back.config).toBe(localM.config.digest);
    expect(back.remoteDigest).toBe(digest);
  });

  it("skips blobs the registry has, mounts from another repository, and writes docker media types on request", async () => {
    const root = freshRoot();
    const e = openEngine({ root });
    await pullImage(e, `${proxy.host}/team/multi:1`);
    // Same registry (through the proxy), other repository: every layer is a cross-repository mount.
    let before = proxy.log.length;
    const pushed = await pushImage(e, `${proxy.host}/team/multi:1`, `${proxy.host}/other/copy:1`, { format: "docker" });
    expect(pushed.layers).toEqual(["mounted", "mounted", "mounted"]);
    let reqs = proxy.log.slice(before);
    // three layers and the config
    expect(reqs.filter((l) => l.method === "POST" && l.path.includes("mount=")).length).toBe(4);
    expect(reqs.filter((l) => l.method === "PATCH" || (l.method === "PUT" && l.path.includes("/blobs/uploads/"))).length).toBe(0);
    const raw = JSON.parse((await exec("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/other/copy:1`])).stdout) as Manifest;
    expect(raw.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(raw.config.mediaType).toBe("application/vnd.docker.container.image.v1+json");
    expect(raw.layers.every((l) => l.mediaType === "application/vnd.docker.image.rootfs.diff.tar.gzip")).toBe(true);
    // Pushing again to the same repository: HEAD finds every blob, nothing is uploaded.
    before = proxy.log.length;
    const again = await pushImage(e, `${proxy.host}/team/multi:1`, `${proxy.host}/other/copy:2`, { format: "docker" });
    expect(again.layers).toEqual(["present", "present", "present"]);
    expect(again.digest).toBe(pushed.digest);
    reqs = proxy.log.slice(before);
    expect(reqs.filter((l) => l.method === "POST" || l.method === "PATCH").length).toBe(0);
  });

  it("uploads large blobs in PATCH chunks", async () => {
    const root = freshRoot();
    const e = openEngine({ root });
    await pullImage(e, `${reg.host}/team/multi:1`);
    const before = proxy.log.length;
    // A store without source records for this registry: blobs are compressed and uploaded.
    const r = await pushImage(e, `${reg.host}/team/multi:1`, `${proxy.host}/chunked/img:1`, { monolithicMax: 64 * 1024, chunkSize: 128 * 1024 });
    expect(r.layers.filter((l) => l === "uploaded").length).toBeGreaterThanOrEqual(1);
    const patches = proxy.log.slice(before).filter((l) => l.method === "PATCH");

    expect(patches.length).toBeGreaterThanOrEqual(3);
    const back = await pullImage(openEngine({ root: freshRoot() }), `${reg.host}/chunked/img:1`);
    expect(back.config).toBe(multi.config);
  });
});

describe("blob and manifest API for other callers", () => {
  it("puts and gets arbitrary blobs and manifests of any media type", async () => {
    const { openRegistry } = await import("../../src/registry/index.js");
    const session = openRegistry(reg.host);
    try {
      const repo = session.repository("cache/test");
      const { Readable } = await import("node:stream");
      const data = Buffer.from("some cache record\n".repeat(1000));
      const put = await repo.putBlob(Readable.from([data.subarray(0, 5000), data.subarray(5000)]));
      expect(put.size).toBe(data.length);
      expect(await repo.hasBlob(put.digest)).toBe(data.length);
      const chunks: Buffer[] = [];
      for await (const c of repo.getBlob(put.digest, { size: data.length })) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          artifactType: "application/vnd.tsbuild.cache.v1",
          config: {
            mediaType: "application/vnd.oci.empty.v1+json",
            digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            size: 2,
          },
          layers: [{ mediaType: "application/vnd.tsbuild.cache.record.v1", digest: put.digest, size: put.size }],
        }),
      );
      await repo.putBlob(Buffer.from("{}"));
      const d = await repo.putManifest("cache", manifest, "application/vnd.oci.image.manifest.v1+json");
      const got = await repo.getManifest("cache");
      expect(got.digest).toBe(d);
      expect(got.bytes.equals(manifest)).toBe(true);
    } finally {
      session.close();
    }
  });
});
