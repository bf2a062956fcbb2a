// Multi-platform test fixtures, set up idempotently on a fresh machine: the aarch64 binfmt_misc handler from Debian's
// qemu-user-static (mounted and registered with the F flag if it is not), Debian's arm64 busybox-static (fetched
// once with `apt-get download` into a cache dir under /tmp), and a two-platform busybox base image (amd64 + arm64)
// as one OCI archive whose index.json names an image index — made with umoci by scripts/make-busybox-base.sh and
// combined here (plain JSON and tar), independent of tsbuild's own code.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { access, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), "../../scripts/make-busybox-base.sh");
const BINFMT = "/proc/sys/fs/binfmt_misc";
const CACHE = "/tmp/tsbuild-test-arm64-busybox";
export const MULTI_TAG = "busybox:multi";

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** Make sure the binfmt_misc handler for `qemuArch` (e.g. "aarch64") is registered, as .ci/run's machine needs. */
export async function ensureBinfmt(qemuArch: string): Promise<void> {
  const conf = `/usr/lib/binfmt.d/qemu-${qemuArch}.conf`;
  if (!(await exists(conf))) throw new Error(`${conf} is missing: apt-get install -y qemu-user-static (scripts/setup.sh --test)`);
  if (!(await exists(join(BINFMT, "register")))) await run("mount", ["-t", "binfmt_misc", "binfmt_misc", BINFMT]);
  if (await exists(join(BINFMT, `qemu-${qemuArch}`))) return;
  const line = (await readFile(conf, "utf8")).split("\n").find((l) => l.startsWith(":"));
  if (!line) throw new Error(`${conf} holds no binfmt_misc registration line`);
  try {
    await writeFile(join(BINFMT, "register"), line);
  } catch (e) {
    // Another test process registered it meanwhile (EEXIST).
    if (!(await exists(join(BINFMT, `qemu-${qemuArch}`)))) throw e;
  }
}

/** The path of Debian's arm64 static busybox (downloaded and unpacked once per machine). */
export async function arm64Busybox(): Promise<string> {
  const bin = join(CACHE, "x", "bin", "busybox");
  if (await exists(bin)) return bin;
  await mkdir(dirname(CACHE), { recursive: true });
  const work = await mkdtemp(`${CACHE}.tmp-`);
  try {
    try {
      await run("apt-get", ["download", "busybox-static:arm64"], { cwd: work });
    } catch (e) {
      throw new Error(
        `apt-get download busybox-static:arm64 failed (${(e as { stderr?: string }).stderr?.trim() ?? String(e)}): run \`dpkg --add-architecture arm64 && apt-get update\` (scripts/setup.sh --test does)`,
      );
    }
    const deb = (await readdir(work)).find((f) => f.endsWith(".deb"));
    if (!deb) throw new Error("apt-get download busybox-static:arm64 wrote no .deb");
    await run("dpkg-deb", ["-x", join(work, deb), join(work, "x")]);
    try {
      await rename(work, CACHE);
    } catch {
      // Another process got there first; its copy is as good.
    }
    return bin;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** An OCI layout of the busybox base for one architecture (scripts/make-busybox-base.sh FORMAT=oci-dir). */
async function layoutFor(dir: string, arch: string, busybox: string): Promise<string> {
  const out = join(dir, `layout-${arch}`);
  try {
    await run(SCRIPT, [out, "busybox:local"], { env: { ...process.env, BUSYBOX: busybox, ARCH: arch, FORMAT: "oci-dir" }, maxBuffer: 16 << 20 });
  } catch (e) {
    throw new Error(`scripts/make-busybox-base.sh (${arch}) failed: ${(e as { stderr?: string }).stderr?.trim() ?? String(e)}`);
  }
  return out;
}

let cached: Promise<string> | undefined;

/**
 * An OCI archive holding busybox:multi for linux/amd64 and linux/arm64: index.json → one image index (named by
 * io.containerd.image.name) → the two manifests with their platform fields. Built once per test process.
 */
export function makeMultiPlatformArchive(): Promise<string> {
  cached ??= (async () => {
    await ensureBinfmt("aarch64");
    const dir = await mkdtemp(join(tmpdir(), "tsbuild-multiimg-"));
    const [amd, arm] = await Promise.all([layoutFor(dir, "amd64", "/bin/busybox"), arm64Busybox().then((b) => layoutFor(dir, "arm64", b))]);
    const out = join(dir, "layout");
    await mkdir(join(out, "blobs", "sha256"), { recursive: true });
    const manifests = [];
    for (const [layout, architecture] of [
      [amd, "amd64"],
      [arm, "arm64"],
    ] as const) {
      for (const f of await readdir(join(layout, "blobs", "sha256"))) await copyFile(join(layout, "blobs", "sha256", f), join(out, "blobs", "sha256", f));
      const idx = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { mediaType: string; digest: string; size: number }[] };
      const m = idx.manifests[0];
      if (!m) throw new Error(`${layout}/index.json lists no manifest`);
      manifests.push({ mediaType: m.mediaType, digest: m.digest, size: m.size, platform: { architecture, os: "linux" } });
    }
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }));
    await writeFile(join(out, "blobs", "sha256", sha(index).slice(7)), index);
    const top = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        {
          mediaType: "application/vnd.oci.image.index.v1+json",
          digest: sha(index),
          size: index.length,
          annotations: { "io.containerd.image.name": "docker.io/library/busybox:multi", "org.opencontainers.image.ref.name": "multi" },
        },
      ],
    };
    await writeFile(join(out, "index.json"), JSON.stringify(top));
    await writeFile(join(out, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const tarFile = join(dir, "busybox-multi.tar");
    await run("tar", ["-C", out, "-cf", tarFile, "oci-layout", "index.json", "blobs"]);
    // Only the tar is kept (like makeBusyboxArchive's, for the rest of this test process).
    for (const d of [amd, arm, out]) await rm(d, { recursive: true, force: true });
    return tarFile;
  })();
  return cached.catch((e: unknown) => {
    cached = undefined;
    throw e;
  });
}

/** A store at `root` holding busybox:multi (both platforms), loaded through the CLI. */
export async function storeWithMultiBusybox(root: string): Promise<string> {
  const { tsbuild } = await import("./cli.js");
  const loaded = await tsbuild(["load", "--root", root, "-i", await makeMultiPlatformArchive()]);
  if (loaded.code !== 0) throw new Error(`tsbuild load of busybox:multi failed: ${loaded.stderr}`);
  return root;
}
