// Bad archives: each fails with a clear ArchiveError naming the file and the problem, and the store gains no ref
// and no blob (blobs are committed only after every image verifies).
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, stat, truncate, writeFile, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { beforeAll, describe, expect, it } from "vitest";
import { ArchiveError } from "../../src/errors.js";
import { loadArchive } from "../../src/exporter/load.js";
import { openContentStore } from "../../src/store/content-store.js";
import { openImageStore } from "../../src/store/image-store.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { storedBlobs } from "../helpers/store.js";

interface Member {
  name: string;
  data?: Buffer | string;
  type?: "file" | "directory" | "symlink" | "link";
  linkname?: string;
}

async function makeTar(members: Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const m of members) {
    const type = m.type ?? "file";
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      const h = { name: m.name, type, mode: type === "directory" ? 0o755 : 0o644, mtime: new Date(0), ...(m.linkname ? { linkname: m.linkname } : {}) };
      if (type === "file") pack.entry(h, Buffer.from(m.data ?? ""), cb);
      else pack.entry(h, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const hex = (b: Buffer | string) => sha(b).slice(7);

/** A docker-archive (old layout, hex-named members) holding one image with the given layer tars. */
async function dockerArchive(
  layers: Buffer[],
  opts: { diffIds?: string[]; layerPaths?: string[]; extra?: Member[]; gzipLayers?: boolean } = {},
): Promise<Buffer> {
  const config = JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: opts.diffIds ?? layers.map((l) => sha(l)) },
  });
  const stored = layers.map((l) => (opts.gzipLayers ? gzipSync(l) : l));
  const paths = opts.layerPaths ?? stored.map((l) => `${hex(l)}.tar`);
  const manifest = JSON.stringify([{ Config: `${hex(config)}.json`, RepoTags: ["bad:1"], Layers: paths }]);
  return makeTar([
    ...stored.map((l, i) => ({ name: paths[i] ?? `l${i}`, data: l })),
    { name: `${hex(config)}.json`, data: config },
    ...(opts.extra ?? []),
    { name: "manifest.json", data: manifest },
  ]);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsbuild-loaderr-"));
});

async function expectLoadError(file: string, code: string, message: RegExp, opts: Parameters<typeof loadArchive>[3] = {}): Promise<ArchiveError> {
  const root = await mkdtemp(join(tmpdir(), "tsbuild-loaderr-store-"));
  const content = openContentStore(root);
  const images = openImageStore(root);
  let err: unknown;
  try {
    await loadArchive(content, images, file, opts);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ArchiveError);
  const a = err as ArchiveError;
  expect(a.code).toBe(code);
  expect(a.message).toContain(file);
  expect(a.message).toMatch(message);
  expect(await images.list()).toEqual([]);
  const blobs: string[] = await storedBlobs(content);
  expect(blobs).toEqual([]);
  expect(await readdir(join(root, "tmp")).catch(() => [])).toEqual([]);
  return a;
}

async function put(name: string, data: Buffer | string): Promise<string> {
  const f = join(dir, name);
  await writeFile(f, data);
  return f;
}

const okLayer = () =>
  makeTar([
    { name: "etc/", type: "directory" },
    { name: "etc/hello", data: "hi\n" },
  ]);

describe("loadArchive rejects bad input", () => {
  it("a file that is not a tar", async () => {
    await expectLoadError(await put("text.tar", "this is not a tar archive\n".repeat(40)), "NOT_A_TAR", /not a tar archive/);
  });

  it("a missing file", async () => {
    await expectLoadError(join(dir, "nope.tar"), "CANNOT_READ", /cannot be read/);
  });

  it("an empty tar (no manifest.json or index.json)", async () => {
    await expectLoadError(await put("empty.tar", await makeTar([])), "UNKNOWN_FORMAT", /neither manifest\.json/);
  });

  it("a truncated tar", async () => {
    const f = join(dir, "trunc.tar");
    await copyFile(await makeBusyboxArchive(), f);
    await truncate(f, Math.floor((await stat(f)).size / 2) + 100);
    await expectLoadError(f, "TRUNCATED", /truncated/);
  });

  it("a truncated gzip-compressed tar", async () => {
    const full = gzipSync(await readFile(await makeBusyboxArchive()));
    await expectLoadError(await put("trunc.tar.gz", full.subarray(0, full.length >> 1)), "TRUNCATED", /truncated/);
  });

  it("a layer with ../evil", async () => {
    const evil = await makeTar([
      { name: "ok", data: "x" },
      { name: "../evil", data: "pwned" },
    ]);
    const e = await expectLoadError(await put("evil.tar", await dockerArchive([evil])), "UNSAFE_PATH", /"\.\.\/evil"/);
    expect(e.message).toContain(`${hex(evil)}.tar`);
  });

  it("a gzip layer with an absolute path", async () => {
    const evil = await makeTar([{ name: "/etc/shadow", data: "x" }]);
    await expectLoadError(await put("abs.tar", await dockerArchive([evil], { gzipLayers: true })), "UNSAFE_PATH", /absolute path/);
  });

  it("a layer with a hardlink escaping the root", async () => {
    const evil = await makeTar([{ name: "a/link", type: "link", linkname: "../../etc/passwd" }]);
    await expectLoadError(await put("hardlink.tar", await dockerArchive([evil])), "UNSAFE_PATH", /hardlink/);
  });

  it("a manifest referencing a missing blob", async () => {
    const layer = await okLayer();
    const tarball = await dockerArchive([layer], { layerPaths: ["missing/layer.tar"] });
    // The layer member itself is never written under that path.
    const stripped = await makeTar([
      { name: "manifest.json", data: JSON.stringify([{ Config: "c.json", RepoTags: ["bad:1"], Layers: ["missing/layer.tar"] }]) },
      { name: "c.json", data: JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [sha(layer)] } }) },
    ]);
    expect(tarball.length).toBeGreaterThan(0);
    await expectLoadError(await put("missing.tar", stripped), "MISSING_BLOB", /"missing\/layer\.tar" is not in the archive/);
  });

  it("a diff_id mismatch", async () => {
    const layer = await okLayer();
    await expectLoadError(await put("diffid.tar", await dockerArchive([layer], { diffIds: [`sha256:${"0".repeat(64)}`] })), "DIGEST_MISMATCH", /diff_id/);
  });

  it("a config whose digest differs from its name", async () => {
    const layer = await okLayer();
    const config = JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [sha(layer)] } });
    const wrong = "1".repeat(64);
    const t = await makeTar([
      { name: "l.tar", data: layer },
      { name: `${wrong}.json`, data: config },
      { name: "manifest.json", data: JSON.stringify([{ Config: `${wrong}.json`, RepoTags: ["bad:1"], Layers: ["l.tar"] }]) },
    ]);
    await expectLoadError(await put("cfgdigest.tar", t), "DIGEST_MISMATCH", /expected sha256:1111/);
  });

  it("an OCI layout whose blob does not match its digest", async () => {
    const layer = await okLayer();
    const config = JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [sha(layer)] } });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha(layer), size: layer.length }],
    });
    const index = JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: sha(manifest),
          size: manifest.length,
          annotations: { "io.containerd.image.name": "docker.io/library/oci:1" },
        },
      ],
    });
    const members = (l: Buffer): Member[] => [
      { name: "oci-layout", data: '{"imageLayoutVersion":"1.0.0"}' },
      { name: "index.json", data: index },
      { name: `blobs/sha256/${hex(manifest)}`, data: manifest },
      { name: `blobs/sha256/${hex(config)}`, data: config },
      { name: `blobs/sha256/${hex(layer)}`, data: l },
    ];
    // Sanity: the well-formed layout loads (index.json first: member order does not matter).
    const root = await mkdtemp(join(tmpdir(), "tsbuild-loaderr-ok-"));
    const r = await loadArchive(openContentStore(root), openImageStore(root), await put("oci-ok.tar", await makeTar(members(layer))));
    expect(r.map((x) => x.name)).toEqual(["docker.io/library/oci:1"]);

    const tampered = Buffer.from(layer);
    tampered[600] = 0x41; // inside the content of etc/hello
    await expectLoadError(await put("oci-bad.tar", await makeTar(members(tampered))), "DIGEST_MISMATCH", /expected sha256:/);
  });
});

describe("loadArchive OCI indexes", () => {
  async function ociImage(arch: string) {
    const layer = await makeTar([{ name: `${arch}.txt`, data: arch }]);
    const config = JSON.stringify({ architecture: arch, os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [sha(layer)] } });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha(gzipSync(layer)), size: gzipSync(layer).length }],
    });
    const members: Member[] = [
      { name: `blobs/sha256/${hex(manifest)}`, data: manifest },
      { name: `blobs/sha256/${hex(config)}`, data: config },
      { name: `blobs/sha256/${hex(gzipSync(layer))}`, data: gzipSync(layer) },
    ];
    return {
      members,
      desc: {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: sha(manifest),
        size: manifest.length,
        platform: { architecture: arch, os: "linux" },
      },
      config: sha(config),
    };
  }

  async function nestedLayout() {
    const arm = await ociImage("arm64");
    const amd = await ociImage("amd64");
    const att = await ociImage("unknown");
    const nested = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [arm.desc, { ...att.desc, platform: { architecture: "unknown", os: "unknown" } }, amd.desc],
    });
    const index = JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.index.v1+json",
          digest: sha(nested),
          size: nested.length,
          annotations: { "org.opencontainers.image.ref.name": "multi:1" },
        },
      ],
    });
    const file = await put(
      "multi.tar",
      await makeTar([
        { name: "index.json", data: index },
        ...arm.members,
        ...att.members,
        { name: `blobs/sha256/${hex(nested)}`, data: nested },
        ...amd.members,
        { name: "oci-layout", data: '{"imageLayoutVersion":"1.0.0"}' },
      ]),
    );
    return { file, arm, amd };
  }

  it("follows a nested index and keeps every platform as one local index, skipping attestations", async () => {
    const { file, arm, amd } = await nestedLayout();
    const root = await mkdtemp(join(tmpdir(), "tsbuild-loadidx-"));
    const content = openContentStore(root);
    const images = openImageStore(root);
    const r = await loadArchive(content, images, file);
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({
      name: "docker.io/library/multi:1",
      config: arm.config,
      manifest: { mediaType: "application/vnd.oci.image.index.v1+json" },
      platforms: [
        { os: "linux", architecture: "arm64" },
        { os: "linux", architecture: "amd64" },
      ],
    });
    const index = await content.readJson<{ manifests: { platform: unknown; digest: `sha256:${string}` }[] }>(
      (await images.get("docker.io/library/multi:1"))!.target.digest,
    );
    expect(index.manifests.map((m) => m.platform)).toEqual([
      { os: "linux", architecture: "arm64" },
      { os: "linux", architecture: "amd64" },
    ]);
    const configs = await Promise.all(index.manifests.map(async (m) => (await content.readJson<{ config: { digest: string } }>(m.digest)).config.digest));
    expect(configs).toEqual([arm.config, amd.config]);
    // The attestation's blobs were not committed: 2 × (layer, config, manifest) + the index.
    expect(await storedBlobs(content)).toHaveLength(7);
  });

  it("with a platform, loads only that image of a nested index", async () => {
    const { file, amd } = await nestedLayout();
    const root = await mkdtemp(join(tmpdir(), "tsbuild-loadidx1-"));
    const content = openContentStore(root);
    const r = await loadArchive(content, openImageStore(root), file, { platform: { os: "linux", architecture: "amd64" } });
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({
      name: "docker.io/library/multi:1",
      config: amd.config,
      manifest: { mediaType: "application/vnd.oci.image.manifest.v1+json" },
    });
    expect(await storedBlobs(content)).toHaveLength(3); // layer (uncompressed), config, new manifest
  });

  async function twoPlatformLayout(name: string, a: Awaited<ReturnType<typeof ociImage>>, b: Awaited<ReturnType<typeof ociImage>>): Promise<string> {
    const index = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [a.desc, b.desc] });
    return put(
      name,
      await makeTar([{ name: "index.json", data: index }, ...a.members, ...b.members, { name: "oci-layout", data: '{"imageLayoutVersion":"1.0.0"}' }]),
    );
  }

  it("a platform the index does not have fails with NO_MATCHING_PLATFORM listing what it has (no silent fallback)", async () => {
    const file = await twoPlatformLayout("foreign.tar", await ociImage("s390x"), await ociImage("riscv64"));
    const e = await expectLoadError(file, "NO_MATCHING_PLATFORM", /has no image for linux\/amd64 \(it has: linux\/s390x, linux\/riscv64\)/, {
      platform: { os: "linux", architecture: "amd64" },
    });
    expect(e.hint).toContain("--platform linux/s390x");
  });

  it("the platform option picks another image of the index", async () => {
    const s390x = await ociImage("s390x");
    const file = await twoPlatformLayout("foreign2.tar", s390x, await ociImage("riscv64"));
    const root = await mkdtemp(join(tmpdir(), "tsbuild-loadplat-"));
    const r = await loadArchive(openContentStore(root), openImageStore(root), file, { platform: { os: "linux", architecture: "s390x" } });
    expect(r.map((x) => x.config)).toEqual([s390x.config]);
  });

  it("honours an aborted signal", async () => {
    const root = await mkdtemp(join(tmpdir(), "tsbuild-loadabort-"));
    const ac = new AbortController();
    ac.abort();
    await expect(loadArchive(openContentStore(root), openImageStore(root), await makeBusyboxArchive(), { signal: ac.signal })).rejects.toMatchObject({
      code: "CANCELLED",
    });
    expect(await openImageStore(root).list()).toEqual([]);
  });
});
