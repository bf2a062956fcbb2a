// The cache-reuse scenarios: for each project and builder, cold, no-op, one-file change late, one-file change early,
// build-arg change and cache import, each timed (median after a warm-up) and checked against the expected cache hits.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { materializeProject, expectedMisses, checkHits } from "./fixtures.mjs";

/** tsbuild, root or rootless: a failed build of ours ends the bench; peers get a retry and an error row. */
const isTsbuild = (builder) => builder.name === "tsbuild" || builder.name === "tsbuild-rootless";
import { median, duBytes, measureNodeFloor } from "./lib/measure.mjs";

/** Scenarios whose time is mostly start-up and cache lookups: each sample is paired with the floor, `node -e 0`. */
const FLOOR_SCENARIOS = new Set(["noop", "late", "early"]);

export const SCENARIOS = {
  cold: "cold (empty store)",
  noop: "no-op rebuild",
  late: "one file changed, late",
  early: "one file changed, early (manifest before RUN)",
  arg: "build-arg changed",
  import: "cache import into an empty store",
};

const errorLine = (e) => {
  const lines = String(e.message).split("\n");
  return (lines.filter((l) => /error/i.test(l)).slice(-1)[0] ?? lines[0] ?? "").trim();
};

/** BuildKit's daemon share of the peak RSS, kept apart in the JSON. */
function withDaemon(o, samples, warm = 1) {
  if (samples[0]?.daemonKB != null) o.daemonKB = median(samples.slice(warm).map((s) => s.daemonKB ?? 0));
  return o;
}

const du = (dirs) => dirs.reduce((n, d) => n + duBytes(d), 0);

function summarize(samples, extra = {}, warm = 1) {
  const timed = samples.slice(warm); // the first `warm` are warm-ups
  const pick = (f) => {
    const v = timed.map(f).filter((x) => x != null && Number.isFinite(x));
    return v.length ? median(v) : null;
  };
  const checks = samples.map((s) => s.check).filter(Boolean);
  const last = checks[checks.length - 1];
  const problems = [...new Set(checks.flatMap((c) => c.problems))];
  return {
    status: "ok",
    runs: timed.length,
    ms: pick((s) => s.ms),
    msAll: timed.map((s) => Math.round(s.ms)),
    rssKB: pick((s) => s.rssKB),
    bytes: pick((s) => s.bytes),
    hits: last ? last.hits : null,
    total: last ? last.total : null,
    expectedHits: last ? last.expectedHits : null,
    // Node's own start-up, timed right after each build of the scenario: what no JavaScript builder can go below.
    floorMs: pick((s) => s.floorMs),
    hitCheck: checks.length === 0 ? "pending" : problems.length ? "FAIL" : "ok",
    problems,
    ...extra,
  };
}

/** Run every scenario of one project on one builder. `counter` makes each change unique, in the same order for every builder. */
export function runProject({ builder, projectName, scenarios, runs, work, log, warm = 1 }) {
  const dir = join(work, `proj-${builder.name}-${projectName}`);
  rmSync(dir, { recursive: true, force: true });
  const project = materializeProject(projectName, dir);
  const state = builder.prepare(project);
  const allMiss = new Set(project.steps.map((s) => s.tag));
  const out = {};
  let counter = 0;
  let primed = false;
  const digests = { cold: new Set(), noop: new Set(), import: new Set(), lastCold: null };

  const sample = (build, storeDirs, mustMiss, checkOpts) => {
    const before = du(storeDirs);
    const r = build();
    const bytes = du(storeDirs) - before;
    const check = r.steps ? checkHits(project, r.steps, mustMiss, checkOpts) : null;
    return { ms: r.ms, rssKB: r.rssKB, bytes, check, digest: r.digest, daemonKB: r.daemonKB, clientKB: r.clientKB };
  };
  const withFloor = (sc, s) => (FLOOR_SCENARIOS.has(sc) && builder.name === "tsbuild" ? { ...s, floorMs: measureNodeFloor().ms } : s);

  // A peer's build that fails is retried once from the same starting point with a fresh change (a new reset for cold,
  // new file bytes or arg value otherwise), so what its failed attempt cached cannot turn expected misses into hits.
  // tsbuild is never retried: its failure ends the benchmark.
  let retries = 0;
  const attempt = (fn) => {
    try {
      return fn();
    } catch (e) {
      if (isTsbuild(builder)) throw e;
      retries++;
      log(`  ${builder.label} ${projectName}: a build failed, retrying once: ${errorLine(e)}`);
      return fn();
    }
  };

  /** Setup changes, timed samples and checks of one scenario; returns its summary. */
  const runScenario = (sc) => {
    const samples = [];
    if (sc === "import") {
      const sup = builder.importSupported();
      if (!sup.ok) return { status: sup.status, note: sup.note };
      primed = false; // the import scenario leaves the builder's own store emptied or elsewhere
      const setup = builder.importSetup(state);
      const onlyStages = sup.partial ? [project.stages.length - 1] : undefined;
      for (let i = 0; i < warm + runs; i++) {
        const s = attempt(() => {
          builder.importPrepare(state);
          return sample(() => builder.importBuild(state), builder.importStoreDirs(state), new Set(), { onlyStages });
        });
        samples.push(s);
        if (s.digest) digests.import.add(s.digest);
      }
      const o = summarize(samples, sup.partial ? { note: sup.note } : {}, warm);
      if (setup.digest && digests.import.size && (digests.import.size !== 1 || !digests.import.has(setup.digest))) {
        o.digestCheck = "FAIL";
        o.problems.push(`image from the imported cache ${[...digests.import].join(", ")} differs from the exporting build's ${setup.digest}`);
      }
      return withDaemon(o, samples, warm);
    }
    // Every scenario but cold starts from a built project: prime the cache once when nothing was built yet.
    if (sc !== "cold" && !primed) attempt(() => builder.build(state, {}));
    primed = true;
    for (let i = 0; i < warm + runs; i++) {
      const s = attempt(() => {
        let buildArgs = {};
        let mustMiss = new Set();
        if (sc === "cold") {
          builder.reset(state);
          mustMiss = allMiss;
        } else if (sc === "late" || sc === "early") {
          counter++;
          const ch = project.changes[sc];
          writeFileSync(join(project.dir, ch.file), `${sc} change ${counter}\n`);
          mustMiss = expectedMisses(project, ch.line);
        } else if (sc === "arg") {
          counter++;
          buildArgs = { [project.changes.arg.name]: `v${counter}` };
          mustMiss = expectedMisses(project, project.changes.arg.line);
        }
        return withFloor(
          sc,
          sample(() => builder.build(state, { buildArgs }), builder.storeDirs(state), mustMiss),
        );
      });
      samples.push(s);
      if (s.digest && (sc === "cold" || sc === "noop")) digests[sc].add(s.digest);
      if (s.digest && sc === "cold") digests.lastCold = s.digest;
    }
    if (sc === "arg") attempt(() => builder.build(state, {})); // back to the default arg, so later scenarios start from it
    return withDaemon(summarize(samples, {}, warm), samples, warm);
  };

  try {
    for (const sc of scenarios) {
      const t0 = performance.now();
      try {
        out[sc] = runScenario(sc);
        out[sc].scenarioMs = Math.round(performance.now() - t0);
        const o = out[sc];
        log(
          `  ${builder.label} ${projectName} ${sc}: ${o.ms != null ? Math.round(o.ms) + " ms" : o.status}${o.hits != null ? `, hits ${o.hits}/${o.total} (${o.hitCheck})` : ""}`,
        );
      } catch (e) {
        // A peer that fails twice in a row is reported as an error for this scenario; the run goes on.
        if (isTsbuild(builder)) throw e;
        out[sc] = { status: "error", note: `error: ${errorLine(e).slice(0, 160)}`, problems: [], peerError: true };
        primed = false;
        log(`  ${builder.label} ${projectName} ${sc}: failed twice, reported as an error`);
      }
    }
    // Honesty: repeated cold builds (SOURCE_DATE_EPOCH=0) must give one image; a no-op rebuild must give that image too.
    if (digests.cold.size > 0) {
      const cold = out.cold;
      cold.digest = [...digests.cold][0];
      cold.digestCheck = digests.cold.size === 1 ? "ok" : "FAIL";
      if (digests.cold.size !== 1) cold.problems.push(`repeated cold builds gave different images: ${[...digests.cold].join(", ")}`);
      if (out.noop && digests.noop.size) {
        // A no-op rebuild reuses the last cold build's cache, so it must give exactly that image.
        const same = digests.noop.size === 1 && digests.noop.has(digests.lastCold);
        out.noop.digestCheck = same ? "ok" : "FAIL";
        if (!same) out.noop.problems.push(`no-op rebuilds gave ${[...digests.noop].join(", ")}, the cold build before them ${digests.lastCold}`);
      }
    }
  } finally {
    builder.finish(state);
    rmSync(dir, { recursive: true, force: true });
  }
  if (retries) for (const o of Object.values(out)) o.peerRetries = retries;
  return {
    project: { name: project.name, description: project.description, instructions: project.instructions, layerSteps: project.steps.length },
    scenarios: out,
  };
}
