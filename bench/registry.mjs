// `node bench/registry.mjs`: push and pull throughput on loopback for a ~200 MB image (incompressible and
// compressible layers) against Debian's docker-registry, with tsbuild and with `skopeo copy` in the same run.
// MB/s are over the image's uncompressed size. Results go to bench/results/registry-<date>.{json,md}.
// Needs: npm run build, docker-registry, skopeo.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(repo, "dist/bundle/bin.js");
const runsArg = process.argv.indexOf("--runs");
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 2;
const MB = 1e6;

for (const [cmd, pkg] of [
  ["docker-registry", "docker-registry"],
  ["skopeo", "skopeo"],
  ["tar", "tar"],
]) {
  if (spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0) throw new Error(`${cmd} is not installed: apt-get install -y ${pkg}`);
}
if (!existsSync(join(repo, "dist/registry/pull.js"))) throw new Error("dist/ has no registry client: run `npm run build` first");

const work = mkdtempSync(join(tmpdir(), "tsbuild-bench-registry-"));
process.on("exit", () => {
  for (const r of registries) r.registry.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${r.stderr}`);
  return r.stdout;
}
const tsbuild = (args) => sh(process.execPath, [bin, ...args]);
function timed(fn) {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

/** The image: 2 × 60 MB random files (incompressible) and 2 × 40 MB of text-like data (compresses ~4x). */
function makeImage() {
  const layout = join(work, "layout");
  mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
  const blob = (data) => {
    const digest = "sha256:" + createHash("sha256").update(data).digest("hex");
    writeFileSync(join(layout, "blobs", "sha256", digest.slice(7)), data);
    return { digest, size: data.length };
  };
  const words = ["layer", "registry", "manifest", "digest", "blob", "push", "pull", "config", "index", "tar", "gzip", "{", "}", "=>", ";"];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const text = (bytes) => {
    const parts = [];
    let n = 0;
    while (n < bytes) {
      const w = words[next() % words.length] + (next() % 9 === 0 ? `${next() % 100000}\n` : " ");
      parts.push(w);
      n += w.length;
    }
    return Buffer.from(parts.join("")).subarray(0, bytes);
  };
  const layers = [];
  const specs = [
    ["random-a.bin", () => randomBytes(60 * 1024 * 1024)],
    ["text-a.txt", () => text(40 * 1024 * 1024)],
    ["random-b.bin", () => randomBytes(60 * 1024 * 1024)],
    ["text-b.txt", () => text(40 * 1024 * 1024)],
  ];
  for (const [i, [name, make]] of specs.entries()) {
    const root = join(work, `layer-${i}`);
    mkdirSync(join(root, "data"), { recursive: true });
    writeFileSync(join(root, "data", name), make());
    const tarFile = join(work, `layer-${i}.tar`);
    sh("tar", ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-cf", tarFile, "-C", root, "."]);
    layers.push(blob(readFileSync(tarFile)));
    rmSync(root, { recursive: true });
    rmSync(tarFile);
  }
  const config = blob(
    Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) } })),
  );
  const manifest = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", ...l })),
      }),
    ),
  );
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifest,
          annotations: { "io.containerd.image.name": "bench/big:1", "org.opencontainers.image.ref.name": "1" },
        },
      ],
    }),
  );
  const archive = join(work, "image.tar");
  sh("tar", ["-cf", archive, "-C", layout, "."]);
  rmSync(layout, { recursive: true });
  return { archive, bytes: layers.reduce((n, l) => n + l.size, 0), config: config.digest };
}

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const registries = [];
let registryCount = 0;
async function startRegistry() {
  const port = await freePort();
  const dir = join(work, `registry-${registryCount++}`);
  mkdirSync(dir);
  writeFileSync(
    join(dir, "config.yml"),
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: ${randomBytes(8).toString("hex")}\n`,
  );
  const registry = spawn("docker-registry", ["serve", join(dir, "config.yml")], { stdio: "ignore" });
  registries.push({ registry, dir });
  for (let i = 0; i < 200; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/v2/`);
      return `127.0.0.1:${port}`;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error("docker-registry did not start");
}

const results = {};
function record(name, secs, bytes, note) {
  (results[name] ??= { runs: [], note }).runs.push(secs);
  console.log(`${name.padEnd(34)} ${secs.toFixed(2).padStart(6)} s  ${(bytes / MB / secs).toFixed(1).padStart(7)} MB/s`);
}

console.log(`generating the image (${cpus().length} cores)...`);
const image = makeImage();
console.log(`image: ${(image.bytes / MB).toFixed(0)} MB uncompressed, 4 layers; ${runs} runs each, a fresh registry per run\n`);

const seed = join(work, "seed-store");
tsbuild(["load", "-q", "--root", seed, "-i", image.archive]);
const saved = join(work, "saved.tar"); // docker-archive with uncompressed layers, what skopeo reads
tsbuild(["save", "--root", seed, "-o", saved, "bench/big:1"]);

let compressedBytes = 0;
function stopRegistries() {
  for (const r of registries.splice(0)) {
    r.registry.kill("SIGTERM");
    rmSync(r.dir, { recursive: true, force: true });
  }
}

for (let r = 0; r < runs; r++) {
  // Fresh registries every run: a registry that already holds the blobs lets both tools skip or mount them, and
  // skopeo's blob-info cache remembers the gzip form of a layer per registry.
  const host = await startRegistry();
  // Push, cold: a fresh copy of the store, so gzip runs (skopeo's docker-archive → registry compresses too).
  const store = join(work, `push-store-${r}`);
  tsbuild(["load", "-q", "--root", store, "-i", image.archive]);
  record(
    "tsbuild push (gzip + upload)",
    timed(() => tsbuild(["push", "-q", "--root", store, "bench/big:1", `${host}/ts/cold${r}:1`])),
    image.bytes,
    "compresses every layer, then uploads",
  );
  record(
    "skopeo copy docker-archive → reg",
    timed(() => sh("skopeo", ["copy", "-q", "--dest-tls-verify=false", `docker-archive:${saved}`, `docker://${host}/sk/cold${r}:1`])),
    image.bytes,
    "skopeo compresses (pgzip) while uploading",
  );
  // Push, warm: gzip blobs at hand (tsbuild's cached, skopeo's in an oci: layout), uploaded to a registry that has
  // none of them (a fresh one each run: otherwise both tools skip or cross-mount blobs the registry already holds).
  const oci = join(work, `oci-${r}`);
  // Pull: tsbuild decompresses and verifies diff_ids into its store; skopeo to oci: keeps the gzip blobs,
  // to docker-archive: it decompresses too.
  record(
    "skopeo copy reg → oci: (pull)",
    timed(() => sh("skopeo", ["copy", "-q", "--src-tls-verify=false", `docker://${host}/sk/cold${r}:1`, `oci:${oci}:1`])),
    image.bytes,
    "stores compressed blobs",
  );
  const fresh = await startRegistry();
  record(
    "tsbuild push (gzip cached)",
    timed(() => tsbuild(["push", "-q", "--root", store, "bench/big:1", `${fresh}/ts/warm${r}:1`])),
    image.bytes,
    "upload of cached gzip blobs to an empty registry",
  );
  record(
    "skopeo copy oci: → reg (push)",
    timed(() => sh("skopeo", ["copy", "-q", "--dest-tls-verify=false", `oci:${oci}:1`, `docker://${fresh}/sk/warm${r}:1`])),
    image.bytes,
    "upload of already-compressed blobs to an empty registry",
  );

  const pullStore = join(work, `pull-store-${r}`);
  record(
    "tsbuild pull",
    timed(() => tsbuild(["pull", "-q", "--root", pullStore, `${host}/sk/cold${r}:1`])),
    image.bytes,
    "download, gunzip, verify digest + diff_id, store",
  );
  const pulledId = JSON.parse(tsbuild(["inspect", "--root", pullStore, `${host}/sk/cold${r}:1`]))[0].Id;
  if (pulledId !== image.config) throw new Error(`pulled image id ${pulledId} differs from ${image.config}`);
  const da = join(work, `pulled-${r}.tar`);
  record(
    "skopeo copy reg → docker-archive:",
    timed(() => sh("skopeo", ["copy", "-q", "--src-tls-verify=false", `docker://${host}/sk/cold${r}:1`, `docker-archive:${da}:bench/big:1`])),
    image.bytes,
    "decompresses into a tar",
  );
  compressedBytes = JSON.parse(sh("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${host}/ts/cold${r}:1`])).layers.reduce(
    (n, l) => n + l.size,
    0,
  );
  for (const p of [store, pullStore, oci, da]) rmSync(p, { recursive: true, force: true });
  stopRegistries();
}

const best = (name) => Math.min(...results[name].runs);
const rate = (name) => image.bytes / MB / best(name);
const ratios = {
  "push cold: tsbuild / skopeo": rate("tsbuild push (gzip + upload)") / rate("skopeo copy docker-archive → reg"),
  "push warm: tsbuild / skopeo": rate("tsbuild push (gzip cached)") / rate("skopeo copy oci: → reg (push)"),
  "pull: tsbuild / skopeo (docker-archive)": rate("tsbuild pull") / rate("skopeo copy reg → docker-archive:"),
  "pull: tsbuild / skopeo (oci, compressed)": rate("tsbuild pull") / rate("skopeo copy reg → oci: (pull)"),
};
console.log("");
for (const [k, v] of Object.entries(ratios)) console.log(`${k.padEnd(42)} ${v.toFixed(2)}x`);

const date = new Date().toISOString().slice(0, 10);
const skopeoVersion = sh("skopeo", ["--version"]).trim();
const out = {
  date,
  machine: { cores: cpus().length, cpu: cpus()[0]?.model, node: process.version },
  tools: { skopeo: skopeoVersion, registry: "Debian docker-registry (distribution 2.8), filesystem storage, loopback HTTP" },
  image: { uncompressedBytes: image.bytes, gzipBytes: compressedBytes, layers: 4 },
  runs,
  results: Object.fromEntries(
    Object.entries(results).map(([k, v]) => [k, { seconds: v.runs.map((s) => +s.toFixed(3)), bestMBs: +rate(k).toFixed(1), note: v.note }]),
  ),
  ratios: Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, +v.toFixed(2)])),
};
mkdirSync(join(repo, "bench/results"), { recursive: true });
writeFileSync(join(repo, `bench/results/registry-${date}.json`), JSON.stringify(out, null, 2) + "\n");
const md = [
  `# Registry throughput, ${date}`,
  "",
  `${(image.bytes / MB).toFixed(0)} MB image (4 layers: 2 × 60 MiB random, 2 × 40 MiB text; ${(compressedBytes / MB).toFixed(0)} MB gzipped), Debian docker-registry on loopback HTTP, ${cpus().length} cores, Node ${process.version}, ${skopeoVersion}. MB/s over the uncompressed size, best of ${runs}.`,
  "",
  "| operation | best s | MB/s | what it does |",
  "|---|---:|---:|---|",
  ...Object.keys(results).map((k) => `| ${k} | ${best(k).toFixed(2)} | ${rate(k).toFixed(1)} | ${results[k].note} |`),
  "",
  "| ratio (MB/s) | |",
  "|---|---:|",
  ...Object.entries(ratios).map(([k, v]) => `| ${k} | ${v.toFixed(2)}x |`),
  "",
].join("\n");
writeFileSync(join(repo, `bench/results/registry-${date}.md`), md);
console.log(`\nwrote bench/results/registry-${date}.{json,md}`);
