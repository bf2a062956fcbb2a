#!/usr/bin/env node
// The two-platform bench row: a cross-compilation project (a $BUILDPLATFORM stage, a per-platform RUN under QEMU)
// built cold for linux/amd64,linux/arm64 by tsbuild and by `buildah build --platform ... --manifest` in the same run,
// median of N after a warm-up, with the ratio. Both start from the same busybox base for both platforms (made by
// scripts/make-busybox-base.sh from Debian's amd64 and arm64 busybox-static): tsbuild loads it as one OCI index,
// buildah gets a local manifest list of the two images. Docker 20.10's builder cannot build several platforms
// without buildx, so it has no row. Usage: node bench/platforms.mjs [--runs N]   (npm run bench:platforms)
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fmtMs, fmtRatio, hasCommand, measured, median, run, tryRun, unmountUnder } from "./lib/measure.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const PLATFORMS = "linux/amd64,linux/arm64";
const ARM64_CACHE = "/tmp/tsbuild-test-arm64-busybox";

export const DOCKERFILE = [
  "FROM --platform=$BUILDPLATFORM busybox:multi AS build",
  "RUN uname -m > /built-on && for i in 1 2 3 4 5 6 7 8; do echo line-$i; done > /out",
  "FROM busybox:multi",
  "ARG TARGETPLATFORM",
  "COPY --from=build /out /built-on /",
  'RUN uname -m > /arch && echo "$TARGETPLATFORM" > /target',
  "",
].join("\n");

const log = (m) => process.stderr.write(`[bench:platforms] ${m}\n`);
const sha = (b) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Debian's arm64 busybox-static (the same cache dir the tests use). */
function arm64Busybox() {
  const bin = join(ARM64_CACHE, "x", "bin", "busybox");
  if (existsSync(bin)) return bin;
  const w = mkdtempSync(`${ARM64_CACHE}.tmp-`);
  try {
    run("apt-get", ["download", "busybox-static:arm64"], { cwd: w });
    const deb = readdirSync(w).find((f) => f.endsWith(".deb"));
    run("dpkg-deb", ["-x", join(w, deb), join(w, "x")]);
    if (!existsSync(bin)) renameSync(w, ARM64_CACHE);
  } catch (e) {
    throw new Error(`${e.message}\nneeds: dpkg --add-architecture arm64 && apt-get update (scripts/setup.sh --test)`);
  } finally {
    rmSync(w, { recursive: true, force: true });
  }
  return bin;
}

/** The two single-platform OCI layouts, and one OCI tar whose index.json names an index over both (for tsbuild). */
function makeBases(work) {
  const layouts = {};
  for (const [arch, busybox] of [
    ["amd64", "/bin/busybox"],
    ["arm64", arm64Busybox()],
  ]) {
    layouts[arch] = join(work, `base-${arch}`);
    run(join(repo, "scripts/make-busybox-base.sh"), [layouts[arch], "busybox:local"], { env: { BUSYBOX: busybox, ARCH: arch, FORMAT: "oci-dir" } });
  }
  const out = join(work, "base-multi");
  mkdirSync(join(out, "blobs", "sha256"), { recursive: true });
  const manifests = [];
  for (const [arch, dir] of Object.entries(layouts)) {
    for (const f of readdirSync(join(dir, "blobs", "sha256"))) copyFileSync(join(dir, "blobs", "sha256", f), join(out, "blobs", "sha256", f));
    const m = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")).manifests[0];
    manifests.push({ mediaType: m.mediaType, digest: m.digest, size: m.size, platform: { architecture: arch, os: "linux" } });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }));
  writeFileSync(join(out, "blobs", "sha256", sha(index).slice(7)), index);
  const ann = { "io.containerd.image.name": "docker.io/library/busybox:multi", "org.opencontainers.image.ref.name": "multi" };
  writeFileSync(
    join(out, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.index.v1+json", digest: sha(index), size: index.length, annotations: ann }],
    }),
  );
  writeFileSync(join(out, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const tar = join(work, "busybox-multi.tar");
  run("tar", ["-C", out, "-cf", tar, "oci-layout", "index.json", "blobs"]);
  return { layouts, tar };
}

function tsbuildRow({ work, tar, project, runs }) {
  const bin = join(repo, "dist/bundle/bin.js");
  if (!existsSync(bin)) throw new Error("dist/bundle/bin.js is missing: npm run build");
  const root = join(work, "ts-store");
  const samples = [];
  let onceChecked = null;
  for (let i = 0; i <= runs; i++) {
    rmSync(root, { recursive: true, force: true });
    run(process.execPath, [bin, "load", "-q", "-i", tar, "--root", root]);
    const meta = join(work, "ts-meta.json");
    const r = measured(
      process.execPath,
      [bin, "build", "--root", root, "--platform", PLATFORMS, "-t", "bench-multi", "--metadata-file", meta, "--progress", "plain", project],
      {
        env: { SOURCE_DATE_EPOCH: "0" },
      },
    );
    const m = JSON.parse(readFileSync(meta, "utf8"));
    const shared = m["tsbuild.cache"].steps.filter((s) => s.name.includes(" build 2/2] RUN"));
    onceChecked = shared.filter((s) => !s.shared).length === 1 ? "ok" : `FAIL: the $BUILDPLATFORM RUN ran ${shared.filter((s) => !s.shared).length} times`;
    if (i > 0) samples.push(r);
  }
  return {
    ms: median(samples.map((s) => s.ms)),
    rssKB: median(samples.map((s) => s.rssKB ?? 0)),
    msAll: samples.map((s) => Math.round(s.ms)),
    check: onceChecked,
  };
}

function buildahRow({ work, layouts, project, runs }) {
  if (!hasCommand("buildah")) return { status: "missing", note: "missing (apt-get install -y buildah)" };
  const base = join(work, "buildah");
  const g = ["--root", join(base, "root"), "--runroot", join(base, "run"), "--storage-driver", "overlay"];
  const buildah = (args) => run("buildah", [...g, ...args]);
  const version = tryRun("buildah", ["--version"]).stdout.trim();
  try {
    for (const [arch, dir] of Object.entries(layouts)) {
      const id = buildah(["pull", "-q", "--platform", `linux/${arch}`, `oci:${dir}:busybox`])
        .trim()
        .split("\n")
        .pop();
      buildah(["tag", id, `localhost/busybox-${arch}:local`]);
    }
    // A local manifest list under the name FROM uses: buildah picks each platform's image from it.
    buildah(["manifest", "create", "docker.io/library/busybox:multi"]);
    for (const arch of Object.keys(layouts))
      buildah(["manifest", "add", "docker.io/library/busybox:multi", `containers-storage:localhost/busybox-${arch}:local`]);
    const samples = [];
    for (let i = 0; i <= runs; i++) {
      // Cold: the previous build's images, manifest list and intermediate layers removed; the base kept.
      tryRun("buildah", [...g, "rm", "-a"]);
      tryRun("buildah", [...g, "manifest", "rm", "localhost/bench-multi"]);
      tryRun("buildah", [...g, "rmi", "-p"]);
      const r = measured("buildah", [
        ...g,
        "build",
        "--platform",
        PLATFORMS,
        "--manifest",
        "localhost/bench-multi",
        "--layers",
        "--isolation",
        "chroot",
        "--pull=never",
        project,
      ]);
      if (i > 0) samples.push(r);
    }
    return {
      status: "ok",
      version,
      ms: median(samples.map((s) => s.ms)),
      rssKB: median(samples.map((s) => s.rssKB ?? 0)),
      msAll: samples.map((s) => Math.round(s.ms)),
    };
  } finally {
    tryRun("buildah", [...g, "rm", "-a"]);
    tryRun("buildah", [...g, "rmi", "-a", "-f"]);
    unmountUnder(base);
    rmSync(base, { recursive: true, force: true });
  }
}

/** Run the row; returns the result and its markdown table. */
export function runPlatformsRow({ runs = 3 } = {}) {
  if (!existsSync("/proc/sys/fs/binfmt_misc/qemu-aarch64"))
    throw new Error(
      "no aarch64 binfmt_misc handler: apt-get install -y qemu-user-static; cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register",
    );
  // Lower case (no mkdtemp suffix): buildah names an image pulled from oci:DIR after the directory.
  const work = join(tmpdir(), `tsbuild-bench-platforms-${process.pid}-${Date.now()}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const project = join(work, "project");
    mkdirSync(project);
    writeFileSync(join(project, "Dockerfile"), DOCKERFILE);
    const { layouts, tar } = makeBases(work);
    log(`tsbuild, ${runs} runs after a warm-up`);
    const ts = tsbuildRow({ work, tar, project, runs });
    log(`buildah, ${runs} runs after a warm-up`);
    const bh = buildahRow({ work, layouts, project, runs });
    const ratio = bh.status === "ok" ? ts.ms / bh.ms : null;
    const md = [
      "| two-platform cold build (linux/amd64,linux/arm64) | tsbuild | buildah | ratio |",
      "|---|---|---|---|",
      `| cross-compilation project, base image local | ${fmtMs(ts.ms)} | ${bh.status === "ok" ? fmtMs(bh.ms) : bh.note} | ${fmtRatio(ratio)} |`,
      "| Docker 20.10 (classic builder) | n/a: no multi-platform builds without buildx | | |",
      "",
      `tsbuild: the $BUILDPLATFORM stage's RUN ran once for both platforms: ${ts.check}. buildah: ${bh.version ?? bh.note}, \`build --platform ${PLATFORMS} --manifest --layers --isolation chroot\`.`,
    ].join("\n");
    return { result: { runs, tsbuild: ts, buildah: bh, ratio }, md };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--runs");
  const runs = i > 0 ? Number(process.argv[i + 1]) : 3;
  const { result, md } = runPlatformsRow({ runs });
  console.log(md);
  const dir = join(repo, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = `${new Date().toISOString().slice(0, 10)}-platforms`;
  writeFileSync(join(dir, `${file}.md`), `# tsbuild bench: two platforms\n\n${md}\n`);
  writeFileSync(join(dir, `${file}.json`), JSON.stringify(result, null, 2) + "\n");
  if (result.tsbuild.check !== "ok") process.exitCode = 1;
}
