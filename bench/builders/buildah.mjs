// buildah (`buildah bud --layers --isolation chroot`) as a benchmark peer, on a private storage root under the bench
// work dir so the machine's own images are never touched. Cache hits are the `--> Using cache` lines after each STEP.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { measured, run, tryRun, hasCommand, unmountUnder } from "../lib/measure.mjs";

/** Steps from buildah's output: `[2/3] STEP 3/6: COPY b/deps.txt ./` names a step; `--> Using cache <id>` marks it cached. */
export function parseBuildahSteps(output) {
  const steps = [];
  for (const line of output.split("\n")) {
    const s = /STEP \d+\/\d+: (.*)$/.exec(line);
    if (s) steps.push({ name: s[1], cached: false });
    else if (/^--> Using cache /.test(line) && steps.length > 0) steps[steps.length - 1].cached = true;
  }
  return steps;
}

export function buildahBuilder({ work, baseArchive, log }) {
  if (!hasCommand("buildah")) return { name: "buildah", label: "buildah", status: "missing", note: "missing (apt-get install -y buildah)" };
  const base = join(work, "buildah");
  const root = join(base, "root");
  const runroot = join(base, "run");
  mkdirSync(base, { recursive: true });
  const global = ["--root", root, "--runroot", runroot, "--storage-driver", "overlay"];
  const buildah = (args) => run("buildah", [...global, ...args]);
  const version = tryRun("buildah", ["--version"]).stdout.trim();
  buildah(["pull", "-q", `docker-archive:${baseArchive}`]);
  tryRun("buildah", [...global, "tag", "docker.io/library/busybox:local", "busybox:local"]);
  log(`buildah: private storage in ${base}`);

  const reset = (state) => {
    tryRun("buildah", [...global, "rm", "-a"]);
    tryRun("buildah", [...global, "rmi", "-f", state.tag]);
    tryRun("buildah", [...global, "rmi", "-p"]); // dangling intermediate images: the --layers cache
  };

  return {
    name: "buildah",
    label: "buildah",
    status: "ok",
    version,
    note: "peak RSS of the buildah process tree (GNU time %M); disk = growth of its storage root (du -sb)",
    prepare(project) {
      const state = { project, tag: `localhost/bench-${project.name}:latest` };
      reset(state);
      return state;
    },
    reset,
    storeDirs() {
      return [root];
    },
    build(state, { buildArgs = {} } = {}) {
      const args = [...global, "bud", "--layers", "--isolation", "chroot", "-t", state.tag];
      for (const [k, v] of Object.entries(buildArgs)) args.push("--build-arg", `${k}=${v}`);
      args.push(state.project.dir);
      const r = measured("buildah", args);
      return { ms: r.ms, rssKB: r.rssKB, steps: parseBuildahSteps(r.stdout + "\n" + r.stderr), digest: null, output: r.stdout };
    },
    importSupported() {
      return { ok: false, status: "n/a", note: "n/a (buildah's --cache-to/--cache-from need a registry)" };
    },
    finish(state) {
      reset(state);
    },
    teardown() {
      tryRun("buildah", [...global, "rm", "-a"]);
      tryRun("buildah", [...global, "rmi", "-a", "-f"]);
      unmountUnder(base);
      rmSync(base, { recursive: true, force: true });
    },
  };
}
