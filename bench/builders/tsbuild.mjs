// tsbuild as a benchmark builder: one store (--root) per project, cold = empty store plus the loaded base image,
// cache hits and the image digest read from --metadata-file. Flags the CLI does not have yet are reported as pending.
import { mkdirSync, rmSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { measured, run } from "../lib/measure.mjs";

/**
 * `runAs` (a `benchUser` from lib/rootless-user.mjs): the same builder as that ordinary user, i.e. a rootless build,
 * with its stores and files in the user's HOME; its figures beside root's give the rootless/root ratio.
 */
export function tsbuildBuilder({ repo, work, baseArchive, extraArgs: globalArgs = [], runAs }) {
  const bin = join(repo, "dist/bundle/bin.js");
  const own = runAs ? runAs.home : work;
  const mine = (dir) => runAs?.own(dir);
  // [file, argv] of node itself, or of node under setpriv as the user.
  const node = (args) => (runAs ? runAs.wrap(process.execPath, args) : [process.execPath, args]);
  // A timed build runs bin.js as a program, as npm's bin link does: its shell line is part of the start-up users get.
  const program = (args) => (runAs ? runAs.wrap(bin, args) : [bin, args]);
  const userEnv = runAs ? runAs.env : {};
  const help = run(process.execPath, [bin, "build", "--help"]);
  const features = {
    metadataFile: help.includes("--metadata-file"),
    cacheTo: help.includes("--cache-to") && help.includes("--cache-from"),
  };
  const env = { SOURCE_DATE_EPOCH: "0", ...userEnv };
  let seq = 0;

  const load = (root) => {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    mine(root);
    run(...node([bin, "load", "-q", "-i", baseArchive, "--root", root]), { env: userEnv });
  };

  const builder = {
    name: runAs ? "tsbuild-rootless" : "tsbuild",
    label: runAs ? "tsbuild rootless" : "tsbuild",
    features,
    status: "ok",
    note: "peak RSS of the tsbuild process tree (GNU time %M); disk = store growth (du -sb of --root)",
    prepare(project) {
      const state = { project, root: join(own, `ts-store-${project.name}`), tag: `bench-${project.name}:latest` };
      load(state.root);
      return state;
    },
    reset(state) {
      load(state.root);
    },
    storeDirs(state) {
      return [state.root];
    },
    /** One timed build. Returns wall ms, peak RSS, the reported steps ({name, cached}) or null, and the image digest. */
    build(state, { buildArgs = {}, cacheTo, cacheFrom, root = state.root, extraArgs = [] } = {}) {
      const meta = join(own, `ts-meta-${process.pid}-${seq++}.json`);
      const args = ["build", "--root", root, "-t", state.tag];
      for (const [k, v] of Object.entries(buildArgs)) args.push("--build-arg", `${k}=${v}`);
      if (cacheTo) args.push("--cache-to", `type=local,dest=${cacheTo},mode=max`); // every stage, so every step must hit
      if (cacheFrom) args.push("--cache-from", `type=local,src=${cacheFrom}`);
      args.push(...globalArgs, ...extraArgs);
      if (features.metadataFile) args.push("--metadata-file", meta, "--progress", "plain");
      else args.push("-q");
      args.push(state.project.dir);
      const r = measured(...program(args), { env });
      let steps = null;
      let digest = null;
      if (features.metadataFile) {
        if (!existsSync(meta)) throw new Error(`tsbuild build did not write its --metadata-file ${meta}`);
        const m = JSON.parse(readFileSync(meta, "utf8"));
        rmSync(meta, { force: true });
        digest = m["containerimage.digest"] ?? null;
        const c = m["tsbuild.cache"];
        if (c && Array.isArray(c.steps)) steps = c.steps.map((s) => ({ name: String(s.name), cached: Boolean(s.cached) }));
      } else {
        digest = r.stdout.trim().split("\n").pop() ?? null; // -q prints the image id
      }
      return { ms: r.ms, rssKB: r.rssKB, steps, digest, output: r.stderr };
    },
    /** Cache import into an empty store: the cold build exports its cache to a local directory once. */
    importSupported() {
      return features.cacheTo ? { ok: true } : { ok: false, status: "pending", note: "pending: tsbuild --cache-to/--cache-from not landed yet" };
    },
    importSetup(state) {
      state.cacheDir = join(own, `ts-cache-${state.project.name}`);
      rmSync(state.cacheDir, { recursive: true, force: true });
      state.importRoot = join(own, `ts-import-${state.project.name}`);
      load(state.importRoot);
      const r = builder.build(state, { cacheTo: state.cacheDir, root: state.importRoot });
      state.importDigest = r.digest;
      return r;
    },
    importPrepare(state) {
      load(state.importRoot);
    },
    importBuild(state) {
      return builder.build(state, { cacheFrom: state.cacheDir, root: state.importRoot });
    },
    importStoreDirs(state) {
      return [state.importRoot];
    },
    finish(state) {
      for (const d of [state.root, state.importRoot, state.cacheDir]) if (d) rmSync(d, { recursive: true, force: true });
    },
    teardown() {},
  };
  return builder;
}
