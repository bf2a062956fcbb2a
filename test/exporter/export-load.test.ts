// Round trips through the real tools: a busybox image made by umoci + skopeo is loaded, exported as docker-archive
// and OCI layout (tar and directory), and each export is checked with skopeo / umoci and loaded back.
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, lstat, readlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { exportDockerArchive } from "../../src/exporter/docker-archive.js";
import { loadArchive } from "../../src/exporter/load.js";
import { exportOciLayout } from "../../src/exporter/oci-layout.js";
import type { Digest, ImageConfig, Index, Manifest } from "../../src/image/types.js";
import { openContentStore } from "../../src/store/content-store.js";
import { openImageStore } from "../../src/store/image-store.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { exec } from "../helpers/tools.js";
import { deleteBlob } from "../helpers/store.js";

const run = promisify(execFile);

async function freshStore() {
  const root = await mkdtemp(join(tmpdir(), "tsbuild-exp-"));
  return { root, content: openContentStore(root), images: openImageStore(root) };
}

async function tarMember(file: string, member: string): Promise<string> {
  const { stdout } = await run("tar", ["-xOf", file, member], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

let archive: string;
let work: string;
let base: Awaited<ReturnType<typeof freshStore>>;
let loaded: Awaited<ReturnType<typeof loadArchive>>;

beforeAll(async () => {
  archive = await makeBusyboxArchive();
  work = await mkdtemp(join(tmpdir(), "tsbuild-exp-out-"));
  base = await freshStore();
  loaded = await loadArchive(base.content, base.images, archive);
});

describe("loadArchive (docker-archive made by skopeo)", () => {
  it("records the image and stores layers as diff_ids", async () => {
    expect(loaded).toHaveLength(1);
    const img = loaded[0]!;
    expect(img.name).toBe("docker.io/library/busybox:local");
    const rec = await base.images.get("docker.io/library/busybox:local");
    expect(rec?.target).toEqual(img.manifest);
    const m = await base.content.readJson<Manifest>(img.manifest.digest);
    expect(m.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(m.config).toMatchObject({ mediaType: "application/vnd.oci.image.config.v1+json", digest: img.config });
    const cfg = await base.content.readJson<ImageConfig>(img.config);
    expect(m.layers.map((l) => l.digest)).toEqual(cfg.rootfs.diff_ids);
    for (const l of m.layers) {
      expect(l.mediaType).toBe("application/vnd.oci.image.layer.v1.tar");
      expect(await base.content.size(l.digest)).toBe(l.size);
      // The stored blob really is the uncompressed tar: its bytes hash to the diff_id.
      const { stdout } = await run("sh", ["-c", `sha256sum ${base.content.path(l.digest)}`]);
      expect(`sha256:${stdout.split(" ")[0]}`).toBe(l.digest);
    }
    expect(cfg.config.Cmd).toEqual(["sh"]);
    // Nothing left behind in tmp/ (no pending writes).
    expect(await readdir(join(base.root, "tmp")).catch(() => [])).toEqual([]);
  });

  it("loads a gzip-compressed archive and --tag names it", async () => {
    const gz = join(work, "bb.tar.gz");
    await run("sh", ["-c", `gzip -1 -c ${archive} > ${gz}`]);
    const s = await freshStore();
    const r = await loadArchive(s.content, s.images, gz, { tag: "extra:1" });
    expect(r.map((x) => x.name).sort()).toEqual(["docker.io/library/busybox:local", "docker.io/library/extra:1"]);
    expect(r[0]!.config).toBe(loaded[0]!.config);
  });
});

describe("exportDockerArchive", () => {
  it("writes a docker-archive that skopeo reads and that loads back to the same image", async () => {
    const out = join(work, "hello.tar");
    await exportDockerArchive(base.content, [{ names: ["docker.io/library/hello:1.0", "myreg:5000/a/b:t"], manifest: loaded[0]!.manifest }], out);
    const manifestJson = JSON.parse(await tarMember(out, "manifest.json")) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    const cfgHex = loaded[0]!.config.slice(7);
    expect(manifestJson).toEqual([
      { Config: `blobs/sha256/${cfgHex}`, RepoTags: ["hello:1.0", "myreg:5000/a/b:t"], Layers: [expect.stringMatching(/^blobs\/sha256\/[a-f0-9]{64}$/)] },
    ]);
    expect(JSON.parse(await tarMember(out, "oci-layout"))).toEqual({ imageLayoutVersion: "1.0.0" });
    const index = JSON.parse(await tarMember(out, "index.json")) as Index;
    expect(index.manifests.map((d) => d.annotations)).toEqual([
      { "io.containerd.image.name": "docker.io/library/hello:1.0", "org.opencontainers.image.ref.name": "1.0" },
      { "io.containerd.image.name": "myreg:5000/a/b:t", "org.opencontainers.image.ref.name": "t" },
    ]);
    expect(Object.keys(JSON.parse(await tarMember(out, "repositories")) as object).sort()).toEqual(["hello", "myreg:5000/a/b"]);

    const { stdout } = await exec("skopeo", ["inspect", "--raw", `docker-archive:${out}`]);
    expect((JSON.parse(stdout) as Manifest).config.digest).toBe(loaded[0]!.config);
    const inspected = JSON.parse((await exec("skopeo", ["inspect", `docker-archive:${out}:hello:1.0`])).stdout) as { Architecture: string };
    expect(inspected.Architecture).toBe("amd64");
    // skopeo can read it as an OCI layout too (Docker 25+ format).
    await exec("skopeo", ["inspect", `oci-archive:${out}:1.0`]);

    const s = await freshStore();
    const r = await loadArchive(s.content, s.images, out);
    expect(r.map((x) => x.name)).toEqual(["docker.io/library/hello:1.0", "myreg:5000/a/b:t"]);
    expect(r[0]!.config).toBe(loaded[0]!.config);
    expect(r[0]!.manifest.digest).toBe(loaded[0]!.manifest.digest);
  });

  it("leaves no file behind when the export fails", async () => {
    const s = await freshStore();
    const r = await loadArchive(s.content, s.images, archive);
    const m = await s.content.readJson<Manifest>(r[0]!.manifest.digest);
    await deleteBlob(s.content, m.layers[0]!.digest);
    const dir = await mkdtemp(join(tmpdir(), "tsbuild-exp-fail-"));
    await expect(exportDockerArchive(s.content, [{ names: ["x:1"], manifest: r[0]!.manifest }], join(dir, "x.tar"))).rejects.toMatchObject({
      code: "BLOB_MISSING",
    });
    await expect(
      exportOciLayout(s.content, [{ name: "x:1", manifest: r[0]!.manifest }], join(dir, "y.tar"), { tar: true, compression: "uncompressed" }),
    ).rejects.toMatchObject({
      code: "BLOB_MISSING",
    });
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("exportOciLayout", () => {
  it("tar, gzip: skopeo reads it, layers are gzip, and it loads back to the same config", async () => {
    const out = join(work, "oci.tar");
    const { descriptor } = await exportOciLayout(base.content, [{ name: "docker.io/library/hello:1.0", manifest: loaded[0]!.manifest }], out, { tar: true });
    expect(descriptor.digest).not.toBe(loaded[0]!.manifest.digest); // rewritten for gzip layers
    const index = JSON.parse(await tarMember(out, "index.json")) as Index;
    expect(index.manifests[0]).toMatchObject({
      digest: descriptor.digest,
      annotations: { "org.opencontainers.image.ref.name": "1.0", "io.containerd.image.name": "docker.io/library/hello:1.0" },
      platform: { os: "linux", architecture: "amd64" },
    });
    const raw = JSON.parse((await exec("skopeo", ["inspect", "--raw", `oci-archive:${out}:1.0`])).stdout) as Manifest;
    expect(raw.layers.every((l) => l.mediaType === "application/vnd.oci.image.layer.v1.tar+gzip")).toBe(true);
    expect(raw.config.digest).toBe(loaded[0]!.config);

    const s = await freshStore();
    const r = await loadArchive(s.content, s.images, out);
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ name: "docker.io/library/hello:1.0", config: loaded[0]!.config });
    // Decompressed on import: the same local manifest as the original load.
    expect(r[0]!.manifest.digest).toBe(loaded[0]!.manifest.digest);
  });

  it("directory: umoci unpacks it with modes intact; a second export adds to index.json", async () => {
    const dir = join(work, "layout");
    await exportOciLayout(base.content, [{ name: "docker.io/library/hello:1.0", manifest: loaded[0]!.manifest }], dir, { tar: false });
    await exportOciLayout(base.content, [{ name: "docker.io/library/hello:raw", manifest: loaded[0]!.manifest }], dir, {
      tar: false,
      compression: "uncompressed",
    });
    const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as Index;
    expect(index.manifests.map((d) => d.annotations?.["org.opencontainers.image.ref.name"])).toEqual(["1.0", "raw"]);
    expect(index.manifests[1]!.digest).toBe(loaded[0]!.manifest.digest);
    await exec("skopeo", ["inspect", `oci:${dir}:1.0`]);

    for (const tag of ["1.0", "raw"]) {
      const bundle = join(work, `bundle-${tag}`);
      await exec("umoci", ["unpack", "--image", `${dir}:${tag}`, bundle]);
      const rootfs = join(bundle, "rootfs");
      expect((await stat(join(rootfs, "bin/busybox"))).mode & 0o7777).toBe(0o755);
      expect(await readFile(join(rootfs, "etc/passwd"), "utf8")).toMatch(/^app:x:1000:1000:/m);
      expect((await stat(join(rootfs, "tmp"))).mode & 0o7777).toBe(0o1777);
      expect((await stat(join(rootfs, "home/app"))).uid).toBe(1000);
      expect((await lstat(join(rootfs, "bin/sh"))).isSymbolicLink()).toBe(true);
      expect(await readlink(join(rootfs, "bin/sh"))).toMatch(/busybox$/);
      await rm(bundle, { recursive: true, force: true });
    }
  });

  it("loads an OCI archive made by skopeo (gzip layers) and one with uncompressed layers", async () => {
    for (const compress of [true, false]) {
      const out = join(work, `skopeo-oci-${compress}.tar`);
      await exec("skopeo", ["copy", "--quiet", ...(compress ? ["--dest-compress"] : []), `docker-archive:${archive}`, `oci-archive:${out}:busybox:fromskopeo`]);
      const s = await freshStore();
      const r = await loadArchive(s.content, s.images, out);
      expect(r).toHaveLength(1);
      expect(r[0]!.name).toBe("docker.io/library/busybox:fromskopeo");
      // skopeo rewrites the config for OCI (so its digest changes), but the layers are the same diff_ids.
      const cfg = await s.content.readJson<ImageConfig>(r[0]!.config);
      const orig = await base.content.readJson<ImageConfig>(loaded[0]!.config);
      expect(cfg.rootfs.diff_ids).toEqual(orig.rootfs.diff_ids);
      const m = await s.content.readJson<Manifest>(r[0]!.manifest.digest);
      expect(m.layers.map((l) => l.digest)).toEqual(orig.rootfs.diff_ids);
      for (const d of cfg.rootfs.diff_ids) expect(await s.content.has(d as Digest)).toBe(true);
    }
  });
});
