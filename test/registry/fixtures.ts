// Test images put into a registry with real tools only (skopeo, umoci, tar), independent of tsbuild's client:
// a multi-layer image (busybox + extra layers) and a two-platform index.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { exec } from "../helpers/tools.js";

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function writeBlob(layout: string, data: Buffer | string): Promise<{ digest: string; size: number }> {
  const digest = sha(data);
  await mkdir(join(layout, "blobs", "sha256"), { recursive: true });
  await writeFile(join(layout, "blobs", "sha256", digest.slice(7)), data);
  return { digest, size: Buffer.byteLength(data) };
}

/** A tar with the given files (made by GNU tar), uncompressed. */
async function makeTar(work: string, name: string, files: Record<string, Buffer | string>): Promise<string> {
  const root = join(work, `${name}-root`);
  for (const [p, content] of Object.entries(files)) {
    await mkdir(join(root, p, ".."), { recursive: true });
    await writeFile(join(root, p), content);
  }
  const out = join(work, `${name}.tar`);
  await exec("tar", ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-cf", out, "-C", root, "."]);
  return out;
}

export interface PushedFixture {
  /** The image's config digest (its id; skopeo keeps the config bytes). */
  config: string;
  diffIds: string[];
}

async function layoutConfig(layout: string, tag: string): Promise<PushedFixture> {
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const entry = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag);
  if (!entry) throw new Error(`tag ${tag} not in ${layout}`);
  const manifest = JSON.parse(await readFile(join(layout, "blobs", "sha256", entry.digest.slice(7)), "utf8")) as { config: { digest: string } };
  const config = JSON.parse(await readFile(join(layout, "blobs", "sha256", manifest.config.digest.slice(7)), "utf8")) as { rootfs: { diff_ids: string[] } };
  return { config: manifest.config.digest, diffIds: config.rootfs.diff_ids };
}

/** busybox plus `extraLayers` layers of random files, pushed by skopeo to `dest` (host/repo:tag). */
export async function pushMultiLayerImage(work: string, dest: string, extraLayers = 2, layerBytes = 300_000): Promise<PushedFixture> {
  const archive = await makeBusyboxArchive();
  const layout = join(work, `layout-${randomBytes(4).toString("hex")}`);
  await exec("skopeo", ["copy", "-q", `docker-archive:${archive}`, `oci:${layout}:img`]);
  for (let i = 0; i < extraLayers; i++) {
    const tar = await makeTar(work, `extra-${i}-${randomBytes(3).toString("hex")}`, {
      [`data/layer-${i}.bin`]: randomBytes(layerBytes),
      [`data/layer-${i}.txt`]: `layer ${i}\n`.repeat(1000),
    });
    await exec("umoci", ["raw", "add-layer", "--image", `${layout}:img`, tar]);
  }
  const fx = await layoutConfig(layout, "img");
  await exec("skopeo", ["copy", "-q", "--dest-tls-verify=false", `oci:${layout}:img`, `docker://${dest}`]);
  return fx;
}

/** An OCI index with linux/amd64 and linux/arm64 images, each one layer holding /arch; pushed by `skopeo copy --all`. */
export async function pushTwoPlatformIndex(work: string, dest: string): Promise<Record<"amd64" | "arm64", PushedFixture & { manifest: string }>> {
  const layout = join(work, `index-${randomBytes(4).toString("hex")}`);
  await mkdir(layout, { recursive: true });
  await writeFile(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const out: Partial<Record<"amd64" | "arm64", PushedFixture & { manifest: string }>> = {};
  const entries = [];
  for (const arch of ["amd64", "arm64"] as const) {
    const tar = await readFile(await makeTar(work, `arch-${arch}`, { arch: `${arch}\n` }));
    const layer = await writeBlob(layout, tar);
    const config = await writeBlob(
      layout,
      JSON.stringify({
        architecture: arch,
        os: "linux",
        ...(arch === "arm64" ? { variant: "v8" } : {}),
        config: { Cmd: ["cat", "/arch"] },
        rootfs: { type: "layers", diff_ids: [layer.digest] },
      }),
    );
    const manifest = await writeBlob(
      layout,
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
      }),
    );
    out[arch] = { config: config.digest, diffIds: [layer.digest], manifest: manifest.digest };
    entries.push({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      ...manifest,
      platform: { architecture: arch, os: "linux", ...(arch === "arm64" ? { variant: "v8" } : {}) },
    });
  }
  const index = await writeBlob(layout, JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: entries }));
  await writeFile(
    join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.index.v1+json", ...index, annotations: { "org.opencontainers.image.ref.name": "multi" } }],
    }),
  );
  await exec("skopeo", ["copy", "-q", "--all", "--dest-tls-verify=false", `oci:${layout}:multi`, `docker://${dest}`]);
  return out as Record<"amd64" | "arm64", PushedFixture & { manifest: string }>;
}
