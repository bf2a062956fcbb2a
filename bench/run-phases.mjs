// Where a trivial RUN's time goes: run-step over the real snapshotter and executor (dist/, so `npm run build` first),
// timed per phase through ProcessIO.phase (snapshot prepare, sandbox setup, runtime, teardown, diff, commit, release),
// beside the runtime's own start in the same run: `crun run` of a minimal bundle, `bwrap --ro-bind / / true`.
// `node bench/run-phases.mjs [--runs N] [--executors crun,bwrap] [--repo DIR]` prints the table; micro.mjs calls runPhases().
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { median, hasCommand } from "./lib/measure.mjs";

// run-step's phases (ProcessIO.phase), then "store": the layer tar into the content store and the step's records,
// as the scheduler writes them after every RUN.
export const PHASES = ["snapshot", "setup", "runtime", "teardown", "diff", "commit", "release", "store"];

/** A minimal rootfs: the static busybox and the applets a trivial RUN uses. */
function writeRootfs(dir) {
  for (const d of ["bin", "etc", "tmp", "proc", "sys", "dev"]) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync("/bin/busybox", join(dir, "bin/busybox"));
  for (const a of ["sh", "true", "echo"]) symlinkSync("busybox", join(dir, "bin", a));
  writeFileSync(join(dir, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
}

function timeSpawn(cmd, args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    c.stderr.on("data", (d) => (err += d));
    c.on("error", reject);
    c.on("close", (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} exited ${code}: ${err.trim()}`))));
  });
}

/**
 * The runtime's own start: `crun run` of a bundle with only proc mounted and /bin/true as the process, through the
 * hybrid-cgroup workaround where this host needs it (crun cannot start at all there without it).
 */
async function rawRuntimeStart(runtime, rootfs, work, runs, cli) {
  const bundle = join(work, `raw-${runtime}`);
  const state = join(work, `raw-${runtime}-state`);
  mkdirSync(bundle, { recursive: true });
  const config = {
    ociVersion: "1.0.2",
    process: { terminal: false, user: { uid: 0, gid: 0 }, args: ["/bin/true"], env: ["PATH=/bin"], cwd: "/", noNewPrivileges: true },
    root: { path: rootfs, readonly: true },
    hostname: "raw",
    mounts: [{ destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] }],
    linux: { namespaces: ["pid", "ipc", "uts", "mount", "network"].map((type) => ({ type })) },
  };
  writeFileSync(join(bundle, "config.json"), JSON.stringify(config));
  const ts = [];
  for (let i = 0; i <= runs; i++) {
    const cmd = cli.wrapped(cli.wrap, [runtime, "--root", state, "run", "--bundle", bundle, `tsbuild-raw-${process.pid}-${i}`]);
    const ms = await timeSpawn(cmd.command, cmd.args);
    if (i > 0) ts.push(ms);
  }
  rmSync(bundle, { recursive: true, force: true });
  return { median: median(ts), best: Math.min(...ts) };
}

async function rawBwrapStart(runs) {
  const ts = [];
  for (let i = 0; i <= runs; i++) {
    const ms = await timeSpawn("bwrap", ["--ro-bind", "/", "/", "true"]);
    if (i > 0) ts.push(ms);
  }
  return { median: median(ts), best: Math.min(...ts) };
}

/**
 * Per executor: the median of each phase over `runs` trivial RUNs (after one warm-up that pays for the build-wide
 * seccomp conversion and network), their total, and the runtime's own start measured between them.
 */
export async function runPhases({ repoDir, runs = 10, executors = ["crun", "bwrap"], log = () => undefined }) {
  const dist = (p) => import(join(repoDir, "dist", p));
  const [
    { runStep },
    { bwrapExecutor },
    { ociRuntimeExecutor },
    { sandboxHooks },
    { createSnapshotter },
    { defaultResourceLimits },
    runtimeCli,
    { storeLayer },
    { openContentStore },
    { putStepRecord },
    { saveExplain },
  ] = await Promise.all(
    [
      "solver/run-step.js",
      "executor/bwrap.js",
      "executor/oci-runtime.js",
      "executor/sandbox-hooks.js",
      "snapshot/snapshotter.js",
      "executor/sandbox-policy.js",
      "executor/runtime-cli.js",
      "layer/store-layer.js",
      "store/content-store.js",
      "cache/records.js",
      "cache/explain.js",
    ].map(dist),
  );
  const cli = { wrapped: runtimeCli.wrapped, wrap: await runtimeCli.crunNeedsHybridWorkaround() };
  const work = mkdtempSync(join(tmpdir(), "tsbuild-run-phases-"));
  const out = {};
  try {
    const rootfs = join(work, "rootfs");
    writeRootfs(rootfs);
    const store = join(work, "store");
    const content = openContentStore(store);
    for (const name of executors) {
      if (!hasCommand(name)) {
        log(`  run phases: ${name} missing (apt-get install -y ${name === "bwrap" ? "bubblewrap" : name})`);
        continue;
      }
      const hooks = sandboxHooks();
      const opts = { limits: defaultResourceLimits(), hooks };
      const executor = name === "bwrap" ? bwrapExecutor(opts) : ociRuntimeExecutor(name, opts);
      const snapshotter = createSnapshotter("auto");
      const per = Object.fromEntries(PHASES.map((p) => [p, []]));
      const totals = [];
      try {
        for (let i = 0; i <= runs; i++) {
          const scratch = join(work, `scratch-${name}-${i}`);
          mkdirSync(scratch);
          const marks = [];
          let stderr = "";
          const t0 = performance.now();
          const r = await runStep({
            rootfs,
            scratch,
            executor,
            snapshotter,
            spec: { args: ["/bin/sh", "-c", `echo ${i} > /f`], env: ["PATH=/bin"], cwd: "/", uid: 0, gid: 0, network: "default" },
            io: { stdout: () => undefined, stderr: (c) => (stderr += Buffer.from(c).toString()), phase: (p) => marks.push([p, performance.now()]) },
            signal: new AbortController().signal,
          });
          if (r.exitCode !== 0) throw new Error(`${name}: trivial RUN exited ${r.exitCode}: ${stderr.trim()}`);
          const layer = await storeLayer(content, r.entries);
          const key = `${name === "bwrap" ? "b" : "c"}${String(i).padStart(31, "0")}`;
          await putStepRecord(store, { v: 1, key, layer, created: new Date().toISOString() });
          await saveExplain(store, key, { v: 1, key, parts: { instruction: `RUN ${i}` } });
          marks.push(["store", performance.now()]);
          const total = performance.now() - t0;
          rmSync(scratch, { recursive: true, force: true });
          if (i === 0) continue;
          let prev = t0;
          for (const [p, t] of marks) {
            per[p].push(t - prev);
            prev = t;
          }
          totals.push(total);
        }
      } finally {
        await hooks.close();
      }
      const phases = Object.fromEntries(PHASES.map((p) => [p, median(per[p])]));
      const raw = name === "bwrap" ? await rawBwrapStart(runs) : await rawRuntimeStart(name, rootfs, work, runs, { ...cli, wrap: name === "crun" && cli.wrap });
      // On a loaded machine every run is hit somewhere: the best run is the cost, the median what a build sees.
      out[name] = {
        phases,
        totalMs: median(totals),
        bestMs: Math.min(...totals),
        rawStartMs: raw.median,
        rawBestMs: raw.best,
        snapshotter: snapshotter.chosen(),
      };
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

/** Rows for the micro table: per executor, the trivial RUN beside the runtime's own start, and the phases. */
export function runPhaseRows(r) {
  const ms = (x) => `${x.toFixed(1)} ms`;
  return Object.entries(r ?? {}).map(([name, e]) => [
    `trivial RUN under ${name} (run-step, ${e.snapshotter ?? "?"})`,
    `${ms(e.totalMs)} (best ${ms(e.bestMs)}); phase medians: ${PHASES.map((p) => `${p} ${e.phases[p].toFixed(1)}`).join(", ")}`,
    `${name === "bwrap" ? "bwrap --ro-bind / / true" : `${name} run of a minimal bundle`} ${ms(e.rawStartMs)} (best ${ms(e.rawBestMs)}); overhead ${ms(e.totalMs - e.rawStartMs)} (best ${ms(e.bestMs - e.rawBestMs)})`,
  ]);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const { dirname } = await import("node:path");
  const arg = (f) => {
    const i = process.argv.indexOf(f);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  // --repo DIR: time another checkout's dist/ (e.g. a base commit, for before/after in one sitting).
  const repoDir = arg("--repo") ?? join(dirname(new URL(import.meta.url).pathname), "..");
  const r = await runPhases({ repoDir, runs: Number(arg("--runs") ?? 10), executors: (arg("--executors") ?? "crun,bwrap").split(","), log: console.log });
  const { loadavg } = await import("node:os");
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  for (const row of runPhaseRows(r)) console.log(row.join(" | "));
}
