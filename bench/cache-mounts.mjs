#!/usr/bin/env node
// The travelling-cache-mounts bench row (issue 17 item 6): a CI runner's first build. The cache was exported by an
// earlier build (mode=max, once with cache-mounts=true and once without); an empty store imports it and builds a
// one-file change, which re-runs a RUN that reads its cache mount. The RUN is a stand-in for a compiler or package
// cache: it makes each missing "unit" (256 KiB of random bytes through gzip -9, CPU work a cache saves) and reuses
// the ones it finds. BuildKit cannot carry cache mounts in its cache, so the row compares tsbuild with itself.
// Usage: node bench/cache-mounts.mjs [--runs N]   (part of npm run bench; --no-cache-mounts there skips it)
import { mkdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { duBytes, fmtBytes, fmtMs, fmtRatio, measured, median, run } from "./lib/measure.mjs";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const UNITS = 80;

export const DOCKERFILE = [
  "FROM busybox:local",
  "COPY src/ /src/",
  "RUN --mount=type=cache,id=units,target=/cache,sharing=locked \\",
  `    made=0; for i in $(seq 1 ${UNITS}); do f=/cache/unit-$i.gz; \\`,
  "      [ -f $f ] || { head -c 262144 /dev/urandom | gzip -9 > $f; made=$((made+1)); }; done; \\",
  `    echo "made $made of ${UNITS} units"; ls /cache | wc -l > /units && cat /src/* | wc -c > /size`,
  "",
].join("\n");

const log = (m) => process.stderr.write(`[bench:cache-mounts] ${m}\n`);

/** One tsbuild build; returns wall ms, peak RSS, the image digest, the units the RUN made, and stderr. */
function build(bin, root, project, args, work) {
  const meta = join(work, `meta-${process.pid}-${Math.random().toString(16).slice(2)}.json`);
  const r = measured(process.execPath, [bin, "build", "--root", root, "--progress", "plain", "--metadata-file", meta, ...args, project], {
    env: { SOURCE_DATE_EPOCH: "0" },
  });
  const m = JSON.parse(readFileSync(meta, "utf8"));
  rmSync(meta, { force: true });
  const made = /made (\d+) of \d+ units/.exec(r.stderr)?.[1];
  const steps = m["tsbuild.cache"].steps.map((s) => s.cached);
  return { ms: r.ms, rssKB: r.rssKB, digest: m["containerimage.digest"], made: made === undefined ? null : Number(made), steps, stderr: r.stderr };
}

/** The row: { result, md }. `baseArchive`: the busybox:local docker-archive the rest of the bench loads. */
export function runCacheMountsRow({ runs = 3, baseArchive, work: parent = tmpdir() } = {}) {
  const bin = join(repo, "dist/bundle/bin.js");
  const work = mkdtempSync(join(parent, "cache-mounts-"));
  const fresh = (name) => {
    const root = join(work, name);
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    run(process.execPath, [bin, "load", "-q", "-i", baseArchive, "--root", root]);
    return root;
  };
  try {
    const project = join(work, "project");
    mkdirSync(join(project, "src"), { recursive: true });
    writeFileSync(join(project, "Dockerfile"), DOCKERFILE);
    for (let i = 0; i < 20; i++) writeFileSync(join(project, "src", `m${i}.c`), `int f${i}(void) { return ${i}; }\n`);
    const withMounts = join(work, "cache-with");
    const without = join(work, "cache-without");
    log("exporting the cache (one build, two --cache-to)");
    const exported = build(
      bin,
      fresh("store-export"),
      project,
      ["--cache-to", `type=local,dest=${withMounts},mode=max,cache-mounts=true`, "--cache-to", `type=local,dest=${without},mode=max`],
      work,
    );
    const problems = [];
    if (exported.made !== UNITS) problems.push(`the exporting build made ${exported.made} units, expected ${UNITS}`);
    const samples = { with: [], without: [] };
    log(`import + one-file change, with and without travelling cache mounts: ${runs} runs each after a warm-up`);
    for (let i = 0; i <= runs; i++) {
      writeFileSync(join(project, "src", "m0.c"), `int f0(void) { return ${1000 + i}; }\n`);
      const digests = [];
      for (const [variant, cache] of [
        ["with", withMounts],
        ["without", without],
      ]) {
        const root = fresh(`store-${variant}`);
        const r = build(bin, root, project, ["--cache-from", `type=local,src=${cache}`], work);
        const want = variant === "with" ? 0 : UNITS;
        if (r.made !== want) problems.push(`${variant}: the re-run RUN made ${r.made} units, expected ${want}`);
        // The change re-runs the COPY and the RUN: neither may hit.
        if (r.steps.some(Boolean)) problems.push(`${variant}: expected the COPY and the RUN to re-run, got hits ${JSON.stringify(r.steps)}`);
        if (variant === "with" && !/restored cache mount "units"/.test(r.stderr)) problems.push("with: no 'restored cache mount' line");
        digests.push(r.digest);
        if (i > 0) samples[variant].push({ ...r, storeBytes: duBytes(root) });
      }
      // The cache mount never enters the image: the same change gives the same image either way.
      if (digests[0] !== digests[1]) problems.push(`the image differs with and without cache mounts: ${digests.join(" vs ")}`);
    }
    const pick = (xs, f) => median(xs.map(f).filter((v) => v != null));
    const w = { ms: pick(samples.with, (s) => s.ms), rssKB: pick(samples.with, (s) => s.rssKB), storeBytes: pick(samples.with, (s) => s.storeBytes) };
    const wo = { ms: pick(samples.without, (s) => s.ms), rssKB: pick(samples.without, (s) => s.rssKB), storeBytes: pick(samples.without, (s) => s.storeBytes) };
    const cacheBytes = { with: duBytes(withMounts), without: duBytes(without) };
    const ratio = w.ms / wo.ms;
    const md = [
      "| cache import into an empty store + one file changed (the RUN reads its cache mount) | with cache-mounts=true | without | ratio |",
      "|---|---|---|---|",
      `| wall time | ${fmtMs(w.ms)} | ${fmtMs(wo.ms)} | ${fmtRatio(ratio)} |`,
      `| peak RSS | ${fmtBytes((w.rssKB ?? NaN) * 1024)} | ${fmtBytes((wo.rssKB ?? NaN) * 1024)} | |`,
      `| exported cache directory | ${fmtBytes(cacheBytes.with)} | ${fmtBytes(cacheBytes.without)} | |`,
      `| store after the build | ${fmtBytes(w.storeBytes)} | ${fmtBytes(wo.storeBytes)} | |`,
      "",
      `The RUN makes each of ${UNITS} cache units it does not find (256 KiB of random bytes through gzip -9): with travelling cache mounts it found all of them, without it made all ${UNITS} again. ` +
        `BuildKit (Docker 20.10 and current) cannot export cache mounts (moby/buildkit#1512), so this row compares tsbuild with itself.` +
        (problems.length ? `\n\nFAILED: ${problems.join("; ")}` : " Every check passed (units made, steps re-run, same image with and without)."),
    ].join("\n");
    return { result: { runs, units: UNITS, with: w, without: wo, ratio, cacheBytes, problems }, md, problems };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--runs");
  const runs = i > 0 ? Number(process.argv[i + 1]) : 3;
  const work = mkdtempSync(join(tmpdir(), "tsbuild-bench-cm-"));
  try {
    const baseArchive = join(work, "busybox.tar");
    run(join(repo, "scripts/make-busybox-base.sh"), [baseArchive, "busybox:local"]);
    const { md, problems } = runCacheMountsRow({ runs, baseArchive, work });
    console.log(md);
    if (problems.length) process.exitCode = 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
