// `npm run bench`: tsbuild's own figures so far — parse speed, build wall time of the example project (cold store),
// and the machine's raw sha256/gzip throughput measured in the same run. Peers (BuildKit, buildah) and the cache
// scenarios arrive with the cache-reuse benchmark. Every build is checked: same digest on every repeat.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { mkdtempSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { benchParse } from "./parse.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const quick = process.argv.includes("--quick");
const runs = quick ? 3 : 5;
const bin = join(repo, "dist/cli/bin.js");
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function rawThroughput() {
  // Text-like data (source files compress about 3-5x), so gzip is not flattered by a constant buffer.
  const words = ["const", "return", "function", "import", "export", "if", "else", "value", "name", "path", "=>", "{", "}", ";"];
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const chunk = Array.from({ length: 200_000 }, () => words[next() % words.length] + (next() % 7 === 0 ? `${next() % 1000}\n` : " ")).join("");
  const one = Buffer.from(chunk);
  const buf = Buffer.alloc(64 * 1024 * 1024);
  for (let o = 0; o < buf.length; o += one.length) one.copy(buf, o, 0, Math.min(one.length, buf.length - o));
  let t0 = performance.now();
  createHash("sha256").update(buf).digest();
  const sha = buf.length / 1e6 / ((performance.now() - t0) / 1000);
  const small = buf.subarray(0, 16 * 1024 * 1024);
  t0 = performance.now();
  gzipSync(small, { level: 6 });
  const gz = small.length / 1e6 / ((performance.now() - t0) / 1000);
  return { sha256MBs: Math.round(sha), gzipMBs: Math.round(gz) };
}

function tsbuild(args, env) {
  const r = spawnSync(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tsbuild ${args.join(" ")} failed:\n${r.stderr}`);
  return r.stdout.trim();
}

function benchBuild(work) {
  const archive = join(work, "busybox.tar");
  execFileSync(join(repo, "scripts/make-busybox-base.sh"), [archive, "busybox:local"], { stdio: "ignore" });
  const times = [];
  const digests = new Set();
  for (let i = 0; i <= runs; i++) {
    const root = join(work, `store-${i}`);
    mkdirSync(root);
    tsbuild(["load", "-q", "-i", archive, "--root", root]);
    const t0 = performance.now();
    const id = tsbuild(["build", "-q", "-t", "example:bench", "--root", root, join(repo, "fixtures/example")], { SOURCE_DATE_EPOCH: "1700000000" });
    const ms = performance.now() - t0;
    if (i > 0) times.push(ms); // the first run warms the page cache
    digests.add(id);
    rmSync(root, { recursive: true, force: true });
  }
  if (digests.size !== 1) throw new Error(`cold builds gave different images: ${[...digests].join(", ")}`);
  return { coldMs: Math.round(median(times)), image: [...digests][0] };
}

function benchRunSteps(work) {
  const p = join(work, "runs");
  mkdirSync(p);
  const steps = 10;
  writeFileSync(join(p, "Dockerfile"), ["FROM busybox:local", ...Array.from({ length: steps }, (_, i) => `RUN echo ${i} > /f${i}`)].join("\n") + "\n");
  const archive = join(work, "busybox.tar");
  const times = [];
  for (let i = 0; i <= runs; i++) {
    const root = join(work, `rstore-${i}`);
    mkdirSync(root);
    tsbuild(["load", "-q", "-i", archive, "--root", root]);
    const t0 = performance.now();
    tsbuild(["build", "-q", "--root", root, p]);
    if (i > 0) times.push(performance.now() - t0);
    rmSync(root, { recursive: true, force: true });
  }
  return { steps, medianMs: Math.round(median(times)), perStepMs: Math.round(median(times) / steps) };
}

const work = mkdtempSync(join(tmpdir(), "tsbuild-bench-"));
try {
  const node = (() => {
    const t = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      execFileSync(process.execPath, ["-e", "0"]);
      t.push(performance.now() - t0);
    }
    return Math.round(median(t));
  })();
  const parse = benchParse({ runs });
  const raw = rawThroughput();
  const build = benchBuild(work);
  const runSteps = benchRunSteps(work);
  const rows = [
    ["parse 10k-line Dockerfile", `${parse.medianMs.toFixed(1)} ms (${parse.linesPerSecond.toLocaleString("en")} lines/s)`, `raw line split ${parse.rawSplitMs.toFixed(2)} ms`],
    ["cold build, fixtures/example (3 stages, COPY + RUN)", `${build.coldMs} ms`, `node -e 0: ${node} ms`],
    [`cold build, ${runSteps.steps} RUN steps`, `${runSteps.medianMs} ms (${runSteps.perStepMs} ms per step, start-up and FROM included)`, `node -e 0: ${node} ms`],
    ["sha256 (node, raw)", `${raw.sha256MBs} MB/s`, ""],
    ["gzip level 6 (node, raw)", `${raw.gzipMBs} MB/s`, ""],
  ];
  const out = ["| figure | tsbuild | machine limit |", "|---|---|---|", ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
  console.log(out);
  console.log(`\nmedian of ${runs} after a warm-up; every cold build produced ${build.image}`);
  const resultsDir = join(repo, "bench/results");
  mkdirSync(resultsDir, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  writeFileSync(join(resultsDir, `${date}.md`), `# tsbuild bench ${date}\n\n${out}\n`);
  writeFileSync(join(resultsDir, `${date}.json`), JSON.stringify({ date, runs, node, parse, raw, build, runSteps }, null, 2) + "\n");
} finally {
  rmSync(work, { recursive: true, force: true });
}
