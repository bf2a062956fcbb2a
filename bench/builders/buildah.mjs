// buildah (`buildah bud --layers --isolation chroot`) as a benchmark peer, as root or rootless, on a private storage
// root under the bench work dir so the machine's own images are never touched. Cache hits are the `--> Using cache` lines after each STEP.
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

/**
 * `runAs` (a `benchUser` from lib/rootless-user.mjs): rootless buildah as that ordinary user, with its storage in the
 * user's HOME, its runroot in the user's XDG_RUNTIME_DIR and the base image pulled into that storage. Same flags as
 * root: `--isolation chroot` (rootless `oci` fails here: crun refuses a hybrid cgroup host) and the overlay driver,
 * native overlayfs in buildah's user namespace on kernels 5.13+.
 */
export function buildahBuilder({ work, baseArchive, log, runAs }) {
  const [name, label] = runAs ? ["buildah-rootless", "buildah rootless"] : ["buildah", "buildah"];
  if (!hasCommand("buildah")) return { name, label, status: "missing", note: "missing (apt-get install -y buildah)" };
  const base = runAs ? join(runAs.home, "buildah") : join(work, "buildah");
  const root = join(base, "root");
  const runroot = runAs ? join(runAs.env.XDG_RUNTIME_DIR, "buildah") : join(base, "run");
  mkdirSync(base, { recursive: true });
  if (runAs) runAs.own(base);
  const global = ["--root", root, "--runroot", runroot, "--storage-driver", "overlay"];
  const env = runAs?.env ?? {};
  // [file, argv] of buildah, or of buildah under setpriv as the user.
  const cmd = (args) => (runAs ? runAs.wrap("buildah", [...global, ...args]) : ["buildah", [...global, ...args]]);
  const buildah = (args) => run(...cmd(args), { env });
  const tryBuildah = (args) => tryRun(...cmd(args), { env });
  const version = tryRun("buildah", ["--version"]).stdout.trim();
  buildah(["pull", "-q", `docker-archive:${baseArchive}`]);
  tryBuildah(["tag", "docker.io/library/busybox:local", "busybox:local"]);
  log(`${label}: private storage in ${base}`);

  const reset = (state) => {
    tryBuildah(["rm", "-a"]);
    tryBuildah(["rmi", "-f", state.tag]);
    tryBuildah(["rmi", "-p"]); // dangling intermediate images: the --layers cache
  };

  return {
    name,
    label,
    status: "ok",
    version: runAs ? `${version} as ${runAs.name} (uid ${runAs.uid})` : version,
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
      const args = ["bud", "--layers", "--isolation", "chroot", "-t", state.tag];
      for (const [k, v] of Object.entries(buildArgs)) args.push("--build-arg", `${k}=${v}`);
      args.push(state.project.dir);
      const r = measured(...cmd(args), { env });
      return { ms: r.ms, rssKB: r.rssKB, steps: parseBuildahSteps(r.stdout + "\n" + r.stderr), digest: null, output: r.stdout };
    },
    importSupported() {
      return { ok: false, status: "n/a", note: "n/a (buildah's --cache-to/--cache-from need a registry)" };
    },
    finish(state) {
      reset(state);
    },
    teardown() {
      tryBuildah(["rm", "-a"]);
      tryBuildah(["rmi", "-a", "-f"]);
      unmountUnder(base);
      rmSync(base, { recursive: true, force: true });
      if (runAs) rmSync(runroot, { recursive: true, force: true });
    },
  };
}
