// `npm run bench [-- --quick]`: the cache-reuse benchmark. Builds generated fixture projects with tsbuild and, when
// installed, BuildKit (Debian docker.io) and buildah in the same run, over cold / no-op / one-file / build-arg / cache-import
// scenarios; checks every build (cache hits against the expectation, same digest on repeated cold builds) and writes
// bench/results/<date>[-quick].{md,json,svg}. Exits non-zero when any check fails, so a broken build never looks fast.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, mkdirSync, writeFileSync, statSync, readdirSync, existsSync } from "node:fs";
import { tmpdir, availableParallelism, release, totalmem, loadavg } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { PROJECTS } from "./fixtures.mjs";
import { SCENARIOS, runProject } from "./macro.mjs";
import { runMicro, microRows } from "./micro.mjs";
import { macroTable, microTable, ratioChartSvg, rootlessRows, rootlessTable, isRootless } from "./report.mjs";
import { tsbuildBuilder } from "./builders/tsbuild.mjs";
import { buildkitBuilder } from "./builders/buildkit.mjs";
import { buildahBuilder } from "./builders/buildah.mjs";
import { runPlatformsRow } from "./platforms.mjs";
import { runCacheMountsRow } from "./cache-mounts.mjs";
import { TIME_BIN } from "./lib/measure.mjs";
import { benchUser } from "./lib/rootless-user.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const USAGE = `usage: npm run bench -- [--quick] [--runs N] [--projects a,b] [--scenarios a,b] [--peers buildkit,buildah,rootless,buildah-rootless|none] [--rootless-user NAME] [--no-micro] [--no-platforms] [--no-cache-mounts] [--no-build] [--tsbuild-arg=FLAG ...]
  projects:  ${Object.keys(PROJECTS).join(", ")}
  scenarios: ${Object.keys(SCENARIOS).join(", ")}
  --tsbuild-arg=FLAG adds FLAG to every tsbuild build (e.g. --snapshotter=copy; --no-cache shows the checks failing)
  --peers rootless: tsbuild itself as --rootless-user (default tsb-bench; it needs /etc/subuid ranges): the rootless/root ratio
  --peers buildah-rootless: buildah as that user too: the rootless tsbuild/rootless buildah ratio
  --no-platforms skips the two-platform row (bench/platforms.mjs; needs qemu-user-static and buildah; never in --quick)
  --no-cache-mounts skips the travelling-cache-mounts row (bench/cache-mounts.mjs; never part of --quick)`;

/**
 * --quick (about 4 minutes with both peers): issue 17's targets 1 and 2 (the many-file cold and one-file builds, the
 * no-op and one-file change of every project) against BuildKit; buildah only on the small projects, since each build
 * of a many-file project costs it 4-15 s.
 */
const QUICK_PLAN = {
  small: ["cold", "noop", "late", "import"],
  multi: ["noop", "late"],
  forty: ["noop", "late"],
  runheavy: ["noop", "late"],
  ctx5k: ["cold", "late", "early"],
  ctx20k: ["cold", "late"],
};
const QUICK_ONLY_BUILDKIT = new Set(["forty", "runheavy", "ctx5k", "ctx20k"]);
/** In --quick these get one timed build and no warm-up (BuildKit's cold ctx20k alone is 11 s a build). */
const QUICK_ONE_RUN = new Set(["ctx5k", "ctx20k"]);

function parseArgs(argv) {
  const o = {
    quick: false,
    runs: null,
    projects: null,
    scenarios: null,
    peers: ["buildkit", "buildah"],
    micro: true,
    platforms: true,
    cacheMounts: true,
    build: true,
    tsbuildArgs: [],
    // Not the tests' tsb-rootless: the rootless tests SIGKILL every process of that user left after a test, which
    // would kill a bench build running beside them.
    rootlessUser: "tsb-bench",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === "--quick") o.quick = true;
    else if (a === "--runs") o.runs = Number.parseInt(val(), 10);
    else if (a === "--projects") o.projects = val().split(",");
    else if (a === "--scenarios") o.scenarios = val().split(",");
    else if (a === "--peers") {
      const v = val();
      o.peers = v === "none" ? [] : v.split(",");
    } else if (a === "--rootless-user") o.rootlessUser = val();
    else if (a === "--tsbuild-arg") o.tsbuildArgs.push(val());
    else if (a.startsWith("--tsbuild-arg=")) o.tsbuildArgs.push(a.slice("--tsbuild-arg=".length));
    else if (a === "--no-micro") o.micro = false;
    else if (a === "--no-platforms") o.platforms = false;
    else if (a === "--no-cache-mounts") o.cacheMounts = false;
    else if (a === "--no-build") o.build = false;
    else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown flag ${a}\n${USAGE}`);
  }
  o.custom =
    o.tsbuildArgs.length > 0 ||
    o.runs !== null ||
    o.projects !== null ||
    o.scenarios !== null ||
    !o.micro ||
    !o.platforms ||
    !o.cacheMounts ||
    o.peers.length < 2;
  o.runs ??= o.quick ? 3 : 5;
  // The two-platform row is in full runs (and `npm run bench:platforms`), not in --quick.
  if (o.quick) o.platforms = false;
  if (!(o.runs >= 1)) throw new Error(`--runs takes a positive number\n${USAGE}`);
  o.projects ??= o.quick ? Object.keys(QUICK_PLAN) : Object.keys(PROJECTS);
  const all = o.scenarios ?? (o.quick ? ["cold", "noop", "late", "import"] : Object.keys(SCENARIOS));
  o.plan = Object.fromEntries(o.projects.map((p) => [p, o.quick && !o.scenarios && QUICK_PLAN[p] ? QUICK_PLAN[p] : all]));
  o.scenarios = all;
  for (const p of o.projects) if (!PROJECTS[p]) throw new Error(`unknown project ${p}\n${USAGE}`);
  for (const s of o.scenarios) if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s}\n${USAGE}`);
  for (const p of o.peers) if (p !== "buildkit" && p !== "buildah" && !ROOTLESS_PEERS[p]) throw new Error(`unknown peer ${p}\n${USAGE}`);
  return o;
}

const ROOTLESS_PEERS = {
  rootless: ["tsbuild-rootless", "tsbuild rootless"],
  "buildah-rootless": ["buildah-rootless", "buildah rootless"],
};

/** tsbuild or buildah as the ordinary user with subordinate ids (a rootless build), or a peer saying why it cannot run. */
function rootlessPeer(peer, user, { repo, work, baseArchive, extraArgs, log }) {
  const [name, label] = ROOTLESS_PEERS[peer];
  if (!user.ok) return { name, label, status: "missing", note: user.note };
  if (peer === "buildah-rootless") return buildahBuilder({ work, baseArchive, log, runAs: user });
  const b = tsbuildBuilder({ repo, work, baseArchive, extraArgs, runAs: user });
  return Object.assign(b, { version: `this checkout as ${user.name} (uid ${user.uid})` });
}

function newestMtime(dir) {
  let m = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    m = Math.max(m, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return m;
}

function ensureBuilt(log) {
  const bin = join(repo, "dist/bundle/bin.js");
  if (existsSync(bin) && statSync(bin).mtimeMs >= newestMtime(join(repo, "src"))) return;
  log("dist/ is older than src/: npm run build");
  const r = spawnSync("npm", ["run", "build"], { cwd: repo, encoding: "utf8" });
  if (r.status === 0) return;
  const tail = (r.stdout + r.stderr).split("\n").slice(-15).join("\n");
  // Another engineer may be mid-edit in src/: measure the last good build rather than nothing, and say so.
  if (existsSync(bin)) log(`npm run build failed; measuring the existing dist/ (older than src/):\n${tail}`);
  else throw new Error(`npm run build failed:\n${tail}`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const loadStart = loadavg()[0];
  const log = (m) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${m}\n`);
  if (opts.build) ensureBuilt(log);
  if (!existsSync(TIME_BIN)) log(`${TIME_BIN} is missing (apt-get install -y time): peak RSS is not measured`);

  const work = mkdtempSync(join(tmpdir(), "tsbuild-bench-"));
  const baseArchive = join(work, "busybox.tar");
  execFileSync(join(repo, "scripts/make-busybox-base.sh"), [baseArchive, "busybox:local"], { stdio: ["ignore", "ignore", "inherit"] });

  const builders = [];
  let interrupted = false;
  const teardown = async () => {
    for (const b of builders) {
      try {
        await b.teardown?.();
      } catch (e) {
        log(`teardown of ${b.name} failed: ${e.message}`);
      }
    }
    rmSync(work, { recursive: true, force: true });
  };
  const onSignal = (sig) => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: stopping peers and removing ${work}`);
    teardown().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  let failed = false;
  try {
    const ts = tsbuildBuilder({ repo, work, baseArchive, extraArgs: opts.tsbuildArgs });
    builders.push(ts);
    if (!ts.features.metadataFile) log("tsbuild has no --metadata-file yet: its cache hits are reported as pending");
    if (!ts.features.cacheTo) log("tsbuild has no --cache-to/--cache-from yet: the cache-import scenario is pending");
    const peers = [];
    if (opts.peers.includes("buildkit")) peers.push(await buildkitBuilder({ work, baseArchive, log }));
    if (opts.peers.includes("buildah")) peers.push(buildahBuilder({ work, baseArchive, log }));
    const rootless = opts.peers.filter((p) => ROOTLESS_PEERS[p]);
    // One user setup for every rootless peer: the same HOME and XDG_RUNTIME_DIR, each builder's store inside it.
    const user = rootless.length ? benchUser({ name: opts.rootlessUser, work, baseArchive }) : null;
    for (const p of rootless) peers.push(rootlessPeer(p, user, { repo, work, baseArchive, extraArgs: opts.tsbuildArgs, log }));
    builders.push(...peers.filter((p) => p.status === "ok"));
    for (const p of peers) if (p.status !== "ok") log(`${p.label}: ${p.note}`);

    const results = [];
    for (const name of opts.projects) {
      const entry = { project: null, builders: {} };
      // A ratio compares builds made minutes apart on a shared machine: the rootless peers run right after tsbuild
      // (tsbuild, tsbuild rootless, buildah rootless, then the others as asked), so drifting load skews them least.
      const rank = (p) => ["tsbuild-rootless", "buildah-rootless"].indexOf(p.name) >>> 0; // -1 (the others) sorts last
      for (const b of [ts, ...peers.filter((p) => p.status === "ok").sort((a, c) => rank(a) - rank(c))]) {
        if (opts.quick && QUICK_ONLY_BUILDKIT.has(name) && b !== ts && b.name !== "buildkit") {
          entry.builders[b.name] = Object.fromEntries(opts.plan[name].map((sc) => [sc, { status: "skipped", note: "not in --quick" }]));
          continue;
        }
        log(`${name} on ${b.label}`);
        const one = opts.quick && QUICK_ONE_RUN.has(name);
        const r = runProject({ builder: b, projectName: name, scenarios: opts.plan[name], runs: one ? 1 : opts.runs, warm: one ? 0 : 1, work, log });
        entry.project = r.project;
        entry.builders[b.name] = r.scenarios;
      }
      results.push(entry);
    }
    const micro = opts.micro ? await runMicro({ tsbuild: ts, repoDir: repo, work, runs: opts.runs, quick: opts.quick, log }) : null;
    // The two-platform row (tsbuild vs buildah --platform ... --manifest) has its own fixture; a machine without
    // QEMU gets a note instead of a number.
    let platformsRow = null;
    if (opts.platforms) {
      try {
        platformsRow = runPlatformsRow({ runs: Math.min(opts.runs, 3) });
      } catch (e) {
        platformsRow = { result: { error: e.message }, md: `not run: ${e.message.split("\n")[0]}` };
      }
    }
    // Target 6 (cache mounts that travel): tsbuild against itself, so full runs only.
    const cacheMountsRow = opts.cacheMounts && !opts.quick ? runCacheMountsRow({ runs: Math.min(opts.runs, 3), baseArchive, work }) : null;
    const durationMs = performance.now() - t0;

    const problems = [];
    for (const e of results)
      for (const [b, scs] of Object.entries(e.builders))
        for (const [sc, r] of Object.entries(scs)) for (const p of r.problems ?? []) problems.push(`${b} ${e.project.name} ${sc}: ${p}`);
    for (const p of cacheMountsRow?.problems ?? []) problems.push(`tsbuild cache mounts: ${p}`);
    const rootlessR = peers.some(isRootless) ? rootlessRows(results, peers) : null;
    for (const r of rootlessR ?? [])
      if (r.sameImageAsRoot === false) problems.push(`tsbuild-rootless ${r.project} ${r.scenario}: its image differs from root's`);
    failed = problems.length > 0;
    const peerNotes = [];
    for (const e of results)
      for (const [b, scs] of Object.entries(e.builders)) {
        for (const [sc, r] of Object.entries(scs)) if (r.status === "error") peerNotes.push(`${b} ${e.project.name} ${sc}: ${r.note}`);
        const retried = Object.values(scs).find((r) => r.peerRetries)?.peerRetries;
        if (retried) peerNotes.push(`${b} ${e.project.name}: ${retried} failed build(s) retried once (a fresh change each time)`);
      }

    const date = new Date().toISOString().slice(0, 10);
    // Runs narrowed by flags get their own name, so they never overwrite the day's full or quick record.
    const file = opts.custom ? `${date}-custom` : opts.quick ? `${date}-quick` : date;
    const machine = {
      cores: availableParallelism(),
      memGB: Math.round(totalmem() / 1e9),
      node: process.version,
      kernel: release(),
      loadavg1: { start: loadStart, end: loadavg()[0] },
    };
    const peerInfo = peers.map((p) => ({ name: p.name, label: p.label, status: p.status, note: p.note, version: p.version, startedDaemon: p.startedDaemon }));
    const macro = macroTable(results, peers);
    const microT = micro ? microTable(microRows(micro)) : "";
    const rootlessT = rootlessR ? rootlessTable(rootlessR, peers) : "";
    const header = [
      `# tsbuild bench ${date}${opts.quick ? " (quick)" : ""}`,
      "",
      `Machine: ${machine.cores} cores, ${machine.memGB} GB, Node ${machine.node}, Linux ${machine.kernel}; 1-min load average ${machine.loadavg1.start.toFixed(1)} at the start, ${machine.loadavg1.end.toFixed(1)} at the end (other work on the machine slows every builder alike). Median of ${opts.runs} runs after one warm-up; the whole run took ${(durationMs / 1000).toFixed(0)} s.`,
      `Peers: ${peerInfo.length === 0 ? "none requested (--peers none)" : peerInfo.map((p) => `${p.label}: ${p.status === "ok" ? `${p.version}${p.startedDaemon ? " (dockerd started and stopped by the bench)" : ""}` : p.note}`).join("; ")}.`,
      "",
      "Ratios are tsbuild ÷ peer (below 1 = tsbuild faster / smaller); the rootless table says its own. Disk = growth of the builder's store (du -sb). Hits = layer steps (RUN/COPY/ADD/WORKDIR) served from the cache, checked against what the change must invalidate.",
      ...peers.filter((p) => p.status === "ok").map((p) => `- ${p.label}: ${p.note}`),
      `- tsbuild: ${ts.note}; SOURCE_DATE_EPOCH=0, and repeated cold builds must give one digest.`,
      "",
    ].join("\n");
    const md = `${header}\n## Cache scenarios\n\n${macro}\n${rootlessT ? `\n## Rootless (same run)\n\nrootless/root = tsbuild as ${opts.rootlessUser} ÷ tsbuild as root; ts/buildah = tsbuild rootless ÷ buildah rootless; below 1 = the first faster.\n\n${rootlessT}\n` : ""}${microT ? `\n## Micro-benchmarks\n\n${microT}\n` : ""}${platformsRow ? `\n## Two platforms\n\n${platformsRow.md}\n` : ""}${cacheMountsRow ? `\n## Cache mounts that travel\n\n${cacheMountsRow.md}\n` : ""}${peerNotes.length ? `\n## Peer errors (not tsbuild's; reported, not hidden)\n\n${peerNotes.map((p) => `- ${p}`).join("\n")}\n` : ""}${problems.length ? `\n## FAILED checks\n\n${problems.map((p) => `- ${p}`).join("\n")}\n` : "\nEvery check passed.\n"}`;
    console.log(md);
    const resultsDir = join(repo, "bench/results");
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, `${file}.md`), md);
    writeFileSync(
      join(resultsDir, `${file}.json`),
      JSON.stringify(
        {
          date,
          quick: opts.quick,
          runs: opts.runs,
          durationMs: Math.round(durationMs),
          machine,
          peers: peerInfo,
          tsbuildFeatures: ts.features,
          results,
          micro,
          rootless: rootlessR,
          platforms: platformsRow?.result ?? null,
          cacheMounts: cacheMountsRow?.result ?? null,
          problems,
          peerNotes,
        },
        null,
        2,
      ) + "\n",
    );
    writeFileSync(join(resultsDir, `${file}.svg`), ratioChartSvg(results, peers, `tsbuild vs peers, wall time — ${date}${opts.quick ? " (quick)" : ""}`));
    log(`wrote bench/results/${file}.{md,json,svg}; total ${(durationMs / 1000).toFixed(1)} s${failed ? `; ${problems.length} FAILED check(s)` : ""}`);
  } finally {
    if (!interrupted) await teardown();
  }
  if (failed) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`bench failed: ${e.stack ?? e.message}`);
  process.exitCode = 1;
});
