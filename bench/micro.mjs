// Micro-benchmarks that explain the macro figures, each beside the machine's raw limit measured in the same run:
// parse speed, context hashing (cold and with the stat cache), COPY/sha256 and layer gzip throughput, per-RUN
// overhead and export of a ~200 MB image (with and without the export, and its compression alone per compressor with
// its parallelism, bench/export-compression.mjs).
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from "node:fs";
import { join } from "node:path";
import xxhash from "xxhash-wasm";
import { benchParse } from "./parse.mjs";
import { writeNodeTree, writeTree, textContent } from "./fixtures.mjs";
import { measured, measureNodeFloor, median, run, prng, hasCommand } from "./lib/measure.mjs";
import { runPhases, runPhaseRows } from "./run-phases.mjs";
import { exportCompression, exportCompressionRows } from "./export-compression.mjs";

function listFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

const mbs = (bytes, ms) => Math.round(bytes / 1e6 / (ms / 1000));

/** node's own throughput on the same bytes tsbuild handles: read + sha256, read + xxh64, gzip at tsbuild's level 6. */
async function rawTree(dir, runs) {
  const { h64Raw } = await xxhash();
  const files = listFiles(dir);
  const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
  const time = (fn) => {
    fn(); // warm the page cache and the JIT
    const t = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      fn();
      t.push(performance.now() - t0);
    }
    return median(t);
  };
  const sha = time(() => {
    for (const f of files) createHash("sha256").update(readFileSync(f)).digest();
  });
  const xx = time(() => {
    for (const f of files) h64Raw(readFileSync(f));
  });
  const tarMs = time(() => run("sh", ["-c", 'tar -cf - -C "$1" . | wc -c >/dev/null', "sh", dir]));
  return { files: files.length, bytes, readSha256Ms: sha, readXxh64Ms: xx, tarMs };
}

function rawBuffers() {
  const next = prng(99);
  const buf = textContent("raw", 64 * 1024 * 1024, next);
  let t0 = performance.now();
  createHash("sha256").update(buf).digest();
  const sha256MBs = mbs(buf.length, performance.now() - t0);
  const small = buf.subarray(0, 32 * 1024 * 1024);
  t0 = performance.now();
  const gz = gzipSync(small, { level: 6 });
  const gzipMBs = mbs(small.length, performance.now() - t0);
  return { sha256MBs, gzipMBs, gzipRatio: Number((small.length / gz.length).toFixed(2)) };
}

/** The ~200 MB fixture as one uncompressed layer tar (what compressLayerStream reads from the store on export). */
function writeLayerTar(big, work) {
  const layer = join(work, "micro-layer.tar");
  run("tar", ["-cf", layer, "-C", big, "big"]);
  return { layer, bytes: statSync(layer).size };
}

export async function runMicro({ tsbuild, repoDir, work, runs: macroRuns, quick, log }) {
  // The heavy micro figures (cold builds of 5,000 files and of ~200 MB) take 2 runs after the warm-up in --quick.
  const runs = quick ? Math.min(2, macroRuns) : macroRuns;
  const warm = quick ? 0 : 1; // in --quick the just-written files are in the page cache already: no warm-up run
  const out = { runs, warmup: warm };
  const t = (label, fn) => {
    const t0 = performance.now();
    const r = fn();
    log(`  micro ${label}: ${Math.round(performance.now() - t0)} ms`);
    return r;
  };

  // Median of `runs` cold builds of a prepared project (each after a reset), after `warmRuns` unmeasured ones.
  const coldMedian = (label, state, warmRuns = warm) =>
    t(label, () => {
      const ms = [];
      for (let i = 1 - warmRuns; i <= runs; i++) {
        tsbuild.reset(state);
        const r = tsbuild.build(state);
        if (i > 0) ms.push(r.ms);
      }
      return median(ms);
    });
  out.nodeStartMs = median(Array.from({ length: runs }, () => measureNodeFloor().ms));
  out.parse = t("parse", () => benchParse({ runs }));
  out.raw = t("raw buffers", () => rawBuffers());

  // Context hashing: a Dockerfile that only COPYs the 5,000-file tree; cold (new store) vs no-op (same store again).
  const ctx = join(work, "micro-ctx");
  rmSync(ctx, { recursive: true, force: true });
  const tree = writeTree(ctx);
  writeFileSync(join(ctx, "Dockerfile"), "FROM busybox:local\nCOPY tree/ /ctx/\n");
  out.treeRaw = await rawTree(join(ctx, "tree"), runs);
  const ctxState = tsbuild.prepare({ name: "micro-ctx", dir: ctx });
  const cold = [];
  const noop = [];
  t("context cold/no-op", () => {
    for (let i = 1 - warm; i <= runs; i++) {
      tsbuild.reset(ctxState);
      const c = tsbuild.build(ctxState);
      const n = tsbuild.build(ctxState);
      if (i > 0) {
        cold.push(c.ms);
        noop.push(n.ms);
      }
    }
  });
  out.context = { files: tree.files, bytes: tree.bytes, coldMs: median(cold), noopMs: median(noop) };
  tsbuild.finish(ctxState);
  rmSync(ctx, { recursive: true, force: true });

  // The floor of those cold builds: the same build of a one-file context (start-up, base image, store), so the
  // COPY's own rate can be told apart from the fixed cost of a build.
  const one = join(work, "micro-one");
  rmSync(one, { recursive: true, force: true });
  mkdirSync(one, { recursive: true });
  writeFileSync(join(one, "Dockerfile"), "FROM busybox:local\nCOPY Dockerfile /ctx/\n");
  const oneState = tsbuild.prepare({ name: "micro-one", dir: one });
  out.floorColdMs = coldMedian("one-file cold", oneState);
  tsbuild.finish(oneState);
  rmSync(one, { recursive: true, force: true });

  // The node-like 20,000-file tree (bench project ctx20k's), COPY'd whole, cold, beside tar -c of it; in --quick the
  // cache table has ctx20k's cold build beside BuildKit's instead.
  if (!quick) {
    const nodeCtx = join(work, "micro-ctx20k");
    rmSync(nodeCtx, { recursive: true, force: true });
    const nodeTree = writeNodeTree(nodeCtx);
    writeFileSync(join(nodeCtx, "Dockerfile"), "FROM busybox:local\nWORKDIR /app\nCOPY . .\n");
    out.nodeTreeRaw = await rawTree(nodeCtx, runs);
    const nodeState = tsbuild.prepare({ name: "micro-ctx20k", dir: nodeCtx });
    out.nodeContext = { files: nodeTree.files, bytes: nodeTree.bytes, coldMs: coldMedian("ctx20k cold", nodeState) };
    tsbuild.finish(nodeState);
    rmSync(nodeCtx, { recursive: true, force: true });
  }

  // How a no-op grows with the context: COPY of 1k / 10k (/ 100k in a full run) small files, primed by one cold build.
  out.noopScale = t("no-op scale", () => noopScale({ tsbuild, work, runs, sizes: quick ? [1000, 10000] : [1000, 10000, 100000] }));

  // The project the earlier benches timed (fixtures/example: 3 stages, COPY + RUN), cold, so figures stay comparable.
  const exState = tsbuild.prepare({ name: "micro-example", dir: join(repoDir, "fixtures/example") });
  out.exampleColdMs = coldMedian("fixtures/example cold", exState, 1);
  tsbuild.finish(exState);

  // Per-RUN overhead: 10 trivial RUNs vs 1, each in a new store; raw limit: bubblewrap starting /bin/true.
  const per = {};
  t("per-RUN", () => {
    for (const n of [1, 10]) {
      const d = join(work, `micro-run${n}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, "Dockerfile"), ["FROM busybox:local", ...Array.from({ length: n }, (_, i) => `RUN echo ${i} > /f${i}`)].join("\n") + "\n");
      const st = tsbuild.prepare({ name: `micro-run${n}`, dir: d });
      const ts = [];
      for (let i = 1 - warm; i <= runs; i++) {
        tsbuild.reset(st);
        const r = tsbuild.build(st);
        if (i > 0) ts.push(r.ms);
      }
      per[n] = median(ts);
      tsbuild.finish(st);
      rmSync(d, { recursive: true, force: true });
    }
  });
  out.perRun = { oneMs: per[1], tenMs: per[10], perStepMs: (per[10] - per[1]) / 9 };
  if (hasCommand("bwrap")) {
    const b = [];
    for (let i = 0; i <= runs; i++) b.push(measured("bwrap", ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "/bin/true"]).ms);
    out.perRun.bwrapTrueMs = median(b.slice(1));
  }
  // Where one trivial RUN's time goes (snapshot, setup, runtime, teardown, diff, commit, release) under crun and bwrap,
  // beside each runtime's own start in the same run (run-phases.mjs; dist/ of this checkout).
  const p0 = performance.now();
  out.runPhases = await runPhases({ repoDir, runs: Math.max(runs, 5), log });
  log(`  micro RUN phases: ${Math.round(performance.now() - p0)} ms`);

  // A ~200 MB image (4 COPY layers of ~50 MB text): cold build with and without `-o type=oci`, each in a new store;
  // the difference is the export (gzip of every layer + writing the tar). Raw: tar -c of the same bytes, node gzip.
  const big = join(work, "micro-big");
  const bigBytes = writeBigFixture(big);
  const bigState = tsbuild.prepare({ name: "micro-big", dir: big });
  const plain = [];
  const exp = [];
  const tarT = [];
  const exportRuns = quick ? 1 : runs;
  t("200 MB export", () => {
    for (let i = 1 - warm; i <= exportRuns; i++) {
      tsbuild.reset(bigState);
      const a = tsbuild.build(bigState);
      tsbuild.reset(bigState);
      const dest = join(work, "micro-export.tar");
      const b = tsbuild.build(bigState, { extraArgs: ["-o", `type=oci,dest=${dest}`] });
      rmSync(dest, { force: true });
      const c = measured("sh", ["-c", 'tar -cf - -C "$1" big | wc -c >/dev/null', "sh", big]);
      if (i > 0) {
        plain.push(a.ms);
        exp.push(b.ms);
        tarT.push(c.ms);
      }
    }
  });
  // The export's compression alone, per compressor, with its parallelism (bench/export-compression.mjs); full runs only
  // (25 s of one-core gzip), or alone with --export-only.
  if (!quick) {
    const lt = writeLayerTar(big, work);
    const t0 = performance.now();
    out.exportOnly = await exportCompression({ distDir: join(repoDir, "dist"), layer: lt.layer, bytes: lt.bytes, rounds: exportRuns });
    out.exportOnlyLayerBytes = lt.bytes;
    log(`  micro 200 MB export compression: ${Math.round(performance.now() - t0)} ms`);
    rmSync(lt.layer, { force: true });
  }
  const coldMs = median(plain);
  const exportMs = median(exp) - coldMs;
  out.export = {
    bytes: bigBytes,
    coldBuildMs: coldMs,
    withExportMs: median(exp),
    exportMs,
    exportMBs: mbs(bigBytes, exportMs),
    tarMs: median(tarT),
    tarMBs: mbs(bigBytes, median(tarT)),
    runs: exportRuns,
  };
  tsbuild.finish(bigState);
  rmSync(big, { recursive: true, force: true });
  return out;
}

/** A tree of `files` small files (~100 bytes), 50 to a directory, as a source checkout's many small files. */
function writeSmallTree(dir, files) {
  for (let i = 0; i < files; i += 50) {
    const d = join(dir, `tree/d${String(Math.floor(i / 2000)).padStart(3, "0")}/e${String((i / 50) % 40).padStart(2, "0")}`);
    mkdirSync(d, { recursive: true });
    for (let j = i; j < Math.min(files, i + 50); j++) writeFileSync(join(d, `f${String(j).padStart(6, "0")}.txt`), `// file ${j}\n${"x".repeat(80)}\n`);
  }
  writeFileSync(join(dir, "Dockerfile"), "FROM busybox:local\nCOPY tree/ /ctx/\n");
}

/** No-op rebuild time and peak RSS per context size (after one cold build and, past the first size, one warm-up). */
function noopScale({ tsbuild, work, runs, sizes }) {
  const rows = [];
  for (const files of sizes) {
    const dir = join(work, `micro-scale-${files}`);
    rmSync(dir, { recursive: true, force: true });
    writeSmallTree(dir, files);
    const st = tsbuild.prepare({ name: `micro-scale-${files}`, dir });
    const cold = tsbuild.build(st);
    const samples = [];
    for (let i = 0; i <= runs; i++) samples.push(tsbuild.build(st));
    const timed = samples.slice(1);
    rows.push({
      files,
      coldMs: cold.ms,
      ms: median(timed.map((r) => r.ms)),
      rssKB: median(timed.map((r) => r.rssKB)),
      floorMs: measureNodeFloor().ms,
    });
    tsbuild.finish(st);
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** The scale rows of the micro table. */
function noopScaleRows(rows) {
  return rows.map((r) => [
    `no-op rebuild, COPY of ${r.files.toLocaleString("en")} small files (stat cache)`,
    `${Math.round(r.ms)} ms = ${Math.round(r.files / (r.ms / 1000)).toLocaleString("en")} files/s, peak RSS ${Math.round(r.rssKB / 1024)} MiB (cold build ${Math.round(r.coldMs)} ms)`,
    `node -e 0: ${Math.round(r.floorMs)} ms`,
  ]);
}

/** Rows for the micro table: figure, tsbuild, raw limit beside it. */
export function microRows(m) {
  const ms = (x) => `${Math.round(x)} ms`;
  const rate = (files, bytes, t) => `${Math.round(files / (t / 1000)).toLocaleString("en")} files/s, ${mbs(bytes, t)} MB/s`;
  const tr = m.treeRaw;
  const ctxMB = m.context.bytes / 1e6;
  // The 210 MB COPY row: the whole cold build's rate and the COPYs' alone (minus the one-file cold build), each also as
  // a share of tar -c's rate.
  const buildMBs = mbs(m.export.bytes, m.export.coldBuildMs);
  const copiesMBs = m.floorColdMs != null ? mbs(m.export.bytes, m.export.coldBuildMs - m.floorColdMs) : undefined;
  const ofTar = (rate) => Math.round((100 * rate) / m.export.tarMBs);
  const rows = [
    [
      "parse a 10k-line Dockerfile",
      `${m.parse.medianMs.toFixed(1)} ms = ${m.parse.linesPerSecond.toLocaleString("en")} lines/s`,
      `raw line split ${m.parse.rawSplitMs.toFixed(2)} ms`,
    ],
    [
      `COPY of the 5,000-file context (${ctxMB.toFixed(0)} MB), cold build`,
      `${ms(m.context.coldMs)} = ${Math.round(m.context.files / (m.context.coldMs / 1000)).toLocaleString("en")} files/s, ${Math.round(ctxMB / (m.context.coldMs / 1000))} MB/s (whole build incl. start-up)`,
      `node read+sha256 ${ms(tr.readSha256Ms)} (${mbs(tr.bytes, tr.readSha256Ms)} MB/s), read+xxh64 ${ms(tr.readXxh64Ms)} (${mbs(tr.bytes, tr.readXxh64Ms)} MB/s), tar -c ${ms(tr.tarMs)}`,
    ],
    [
      `same, no-op rebuild (stat cache)`,
      `${ms(m.context.noopMs)} = ${Math.round(m.context.files / (m.context.noopMs / 1000)).toLocaleString("en")} files/s`,
      `node -e 0: ${ms(m.nodeStartMs)}`,
    ],
    ...(m.floorColdMs != null
      ? [
          [
            `COPY of the 5,000-file context alone (cold build minus a one-file cold build, ${ms(m.floorColdMs)})`,
            rate(m.context.files, m.context.bytes, m.context.coldMs - m.floorColdMs),
            `tar -c ${ms(tr.tarMs)} = ${Math.round(tr.files / (tr.tarMs / 1000)).toLocaleString("en")} files/s`,
          ],
        ]
      : []),
    ...(m.nodeContext
      ? [
          [
            `COPY . . of the node-like 20,000-file context (${(m.nodeContext.bytes / 1e6).toFixed(0)} MB), cold build`,
            `${ms(m.nodeContext.coldMs)} = ${rate(m.nodeContext.files, m.nodeContext.bytes, m.nodeContext.coldMs)} (whole build)`,
            `tar -c ${ms(m.nodeTreeRaw.tarMs)} = ${Math.round(m.nodeTreeRaw.files / (m.nodeTreeRaw.tarMs / 1000)).toLocaleString("en")} files/s`,
          ],
          [
            `same, the COPY alone (minus the one-file cold build)`,
            rate(m.nodeContext.files, m.nodeContext.bytes, m.nodeContext.coldMs - m.floorColdMs),
            `node read+xxh64 ${ms(m.nodeTreeRaw.readXxh64Ms)} (${mbs(m.nodeTreeRaw.bytes, m.nodeTreeRaw.readXxh64Ms)} MB/s)`,
          ],
        ]
      : []),
    ...noopScaleRows(m.noopScale ?? []),
    [
      `COPY of ${Math.round(m.export.bytes / 1e6)} MB in 4 layers (walk, tar, sha256, store), cold build`,
      `${ms(m.export.coldBuildMs)} = ${buildMBs} MB/s` + (copiesMBs != null ? `; the COPYs alone ${copiesMBs} MB/s` : ""),
      `tar -c of the same bytes ${ms(m.export.tarMs)} (${m.export.tarMBs} MB/s; tsbuild ${ofTar(buildMBs)}% of it` +
        (copiesMBs != null ? `, the COPYs alone ${ofTar(copiesMBs)}%` : "") +
        `); node sha256 ${m.raw.sha256MBs} MB/s`,
    ],
    [
      `export that image (-o type=oci: gzip + tar)`,
      `${ms(m.export.exportMs)} = ${m.export.exportMBs} MB/s`,
      `node gzip -6 ${m.raw.gzipMBs} MB/s per core (ratio ${m.raw.gzipRatio}); tar -c ${m.export.tarMBs} MB/s`,
    ],
    ...exportCompressionRows(m.exportOnly ?? [], Math.round((m.exportOnlyLayerBytes ?? 0) / 1e6)),
    ["cold build, fixtures/example (3 stages, COPY + RUN)", ms(m.exampleColdMs), `node -e 0: ${ms(m.nodeStartMs)}`],
    [
      `per-RUN overhead (10 trivial RUNs vs 1)`,
      `${ms(m.perRun.perStepMs)} per RUN (1 RUN: ${ms(m.perRun.oneMs)}, 10: ${ms(m.perRun.tenMs)})`,
      m.perRun.bwrapTrueMs != null ? `bwrap /bin/true ${ms(m.perRun.bwrapTrueMs)}` : "bwrap missing (apt-get install -y bubblewrap)",
    ],
    ...runPhaseRows(m.runPhases),
    ["sha256 / gzip -6 (node, 64 MB / 32 MB of text)", `${m.raw.sha256MBs} MB/s / ${m.raw.gzipMBs} MB/s`, "raw"],
  ];
  return rows;
}

/** The ~200 MB fixture of the export rows: 4 directories of 50 text files of 1 MiB. Returns its byte count. */
function writeBigFixture(big) {
  rmSync(big, { recursive: true, force: true });
  const next = prng(200);
  for (let p = 1; p <= 4; p++)
    for (let f = 0; f < 50; f++) {
      mkdirSync(join(big, `big/p${p}`), { recursive: true });
      writeFileSync(join(big, `big/p${p}/f${f}.txt`), textContent(`big/p${p}/f${f}.txt`, 1 << 20, next));
    }
  writeFileSync(join(big, "Dockerfile"), "FROM busybox:local\n" + [1, 2, 3, 4].map((p) => `COPY big/p${p}/ /data/p${p}/`).join("\n") + "\n");
  return 4 * 50 * (1 << 20);
}

// `node bench/micro.mjs --export-only [--runs N]`: just the export compression rows (needs `npm run build` first),
// for measuring compression without the whole bench.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href && process.argv.includes("--export-only")) {
  const { mkdtempSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { dirname } = await import("node:path");
  const repo = join(dirname(new URL(import.meta.url).pathname), "..");
  const runsArg = process.argv.indexOf("--runs");
  const rounds = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
  const work = mkdtempSync(join(tmpdir(), "tsbuild-micro-export-"));
  try {
    const big = join(work, "big");
    writeBigFixture(big);
    const lt = writeLayerTar(big, work);
    const rows = await exportCompression({ distDir: join(repo, "dist"), layer: lt.layer, bytes: lt.bytes, rounds });
    for (const [figure, value, beside] of exportCompressionRows(rows, Math.round(lt.bytes / 1e6))) console.log(`${figure}\n  ${value}\n  ${beside}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// `node bench/micro.mjs --noop-scale [--runs N] [--sizes 1000,10000,100000]`: just the no-op scale rows (needs
// `npm run build` first), for measuring the context walk and the stat cache without the whole bench.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href && process.argv.includes("--noop-scale")) {
  const { mkdtempSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { dirname } = await import("node:path");
  const { tsbuildBuilder } = await import("./builders/tsbuild.mjs");
  const repo = join(dirname(new URL(import.meta.url).pathname), "..");
  const arg = (name, dflt) => (process.argv.indexOf(name) > 0 ? process.argv[process.argv.indexOf(name) + 1] : dflt);
  const work = mkdtempSync(join(tmpdir(), "tsbuild-micro-scale-"));
  try {
    const baseArchive = join(work, "busybox.tar");
    run(join(repo, "scripts/make-busybox-base.sh"), [baseArchive, "busybox:local"]);
    const tsbuild = tsbuildBuilder({ repo, work, baseArchive });
    const sizes = arg("--sizes", "1000,10000,100000").split(",").map(Number);
    const rows = noopScale({ tsbuild, work, runs: Number(arg("--runs", "3")), sizes });
    for (const r of noopScaleRows(rows)) console.log(r.join(" | "));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
