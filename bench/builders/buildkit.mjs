// BuildKit (through Debian's docker.io 20.10, `DOCKER_BUILDKIT=1 /usr/bin/docker build`) as a benchmark peer.
// Uses a running dockerd when there is one; otherwise starts a private dockerd (own data-root, socket and managed
// containerd under the bench work dir) and stops it at the end. Cache hits are the `#N CACHED` lines of plain progress.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import { measured, run, tryRun, hasCommand } from "../lib/measure.mjs";

const DOCKER = "/usr/bin/docker"; // Debian's client: a newer `docker` on PATH may insist on buildx

/** Steps from BuildKit's plain progress: `#7 [builder-a 3/6] COPY a/deps.txt ./` names vertex 7, `#7 CACHED` marks it. */
export function parseBuildkitSteps(output) {
  const names = new Map();
  const cached = new Set();
  for (const line of output.split("\n")) {
    const v = /^#(\d+) \[([^\]]*)\] (.*)$/.exec(line);
    if (v) names.set(v[1], `[${v[2]}] ${v[3]}`);
    const c = /^#(\d+) CACHED\s*$/.exec(line);
    if (c) cached.add(c[1]);
  }
  return [...names].map(([id, name]) => ({ name, cached: cached.has(id) }));
}

function procHWM(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function resetHWM(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5"); // 5 resets the peak RSS (VmHWM) to the current RSS
    return true;
  } catch {
    return false;
  }
}

export async function buildkitBuilder({ work, baseArchive, log }) {
  const missing = { name: "buildkit", label: "BuildKit", status: "missing", note: "missing (apt-get install -y docker.io)" };
  if (!existsSync(DOCKER) || !hasCommand("dockerd")) return missing;

  let env = { DOCKER_BUILDKIT: "1" };
  let started = null;
  let dataRoot = null;
  const info = tryRun(DOCKER, ["info", "--format", "{{.DockerRootDir}}"], { env });
  if (info.ok && info.stdout.trim()) {
    dataRoot = info.stdout.trim();
    log(`BuildKit: using the running dockerd (data root ${dataRoot})`);
  } else {
    const base = join(work, "docker");
    mkdirSync(base, { recursive: true });
    dataRoot = join(base, "data");
    const sock = join(base, "docker.sock");
    const pidfile = join(base, "docker.pid");
    const logFd = openSync(join(base, "dockerd.log"), "a");
    // --iptables=false: no firewall changes; the default bridge stays (BuildKit's RUN needs it, see PEERS.md).
    const child = spawn(
      "dockerd",
      [
        "--iptables=false",
        "--storage-driver=overlay2",
        "--data-root",
        dataRoot,
        "--exec-root",
        join(base, "exec"),
        "-H",
        `unix://${sock}`,
        "--pidfile",
        pidfile,
      ],
      { stdio: ["ignore", logFd, logFd], detached: true },
    );
    closeSync(logFd);
    started = { child, pid: child.pid, base, sock };
    env = { ...env, DOCKER_HOST: `unix://${sock}` };
    const t0 = Date.now();
    while (!tryRun(DOCKER, ["info"], { env }).ok) {
      if (child.exitCode !== null || Date.now() - t0 > 30_000) {
        const tail = existsSync(join(base, "dockerd.log")) ? readFileSync(join(base, "dockerd.log"), "utf8").split("\n").slice(-10).join("\n") : "";
        stop();
        return { ...missing, status: "error", note: `dockerd did not start: ${tail}` };
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    log(`BuildKit: started a private dockerd (pid ${child.pid}, managed containerd) in ${base}; it is stopped at the end`);
  }
  const daemonPid = started?.pid ?? Number.parseInt(tryRun("pgrep", ["-xo", "dockerd"]).stdout.trim(), 10);
  const version = tryRun(DOCKER, ["version", "--format", "{{.Server.Version}}"], { env }).stdout.trim();
  run(DOCKER, ["load", "-q", "-i", baseArchive], { env });

  function stop() {
    if (!started) return;
    try {
      process.kill(started.pid, "SIGTERM");
    } catch {
      /* already gone */
    }
  }

  const docker = (args) => run(DOCKER, args, { env });
  const reset = (state) => {
    tryRun(DOCKER, ["rmi", "-f", state.tag], { env });
    docker(["builder", "prune", "-af"]);
    tryRun(DOCKER, ["image", "prune", "-f"], { env });
  };

  const timedBuild = (state, args) => {
    const hwm = Number.isFinite(daemonPid) && resetHWM(daemonPid);
    const r = measured(DOCKER, ["build", "--progress=plain", "-t", state.tag, ...args, state.project.dir], { env });
    const daemonKB = hwm ? procHWM(daemonPid) : null;
    return {
      ms: r.ms,
      rssKB: r.rssKB != null && daemonKB != null ? r.rssKB + daemonKB : r.rssKB,
      clientKB: r.rssKB,
      daemonKB,
      steps: parseBuildkitSteps(r.stderr),
      digest: null,
      output: r.stderr,
    };
  };

  const builder = {
    name: "buildkit",
    label: "BuildKit",
    status: "ok",
    version: `docker ${version} (BuildKit built in)`,
    note: "peak RSS = docker client (GNU time %M) + dockerd's peak during the build (VmHWM after clear_refs; RUN containers excluded); disk = growth of dockerd's data root (du -sb)",
    startedDaemon: Boolean(started),
    prepare(project) {
      const state = { project, tag: `bench-${project.name}:latest` };
      reset(state);
      return state;
    },
    reset,
    storeDirs() {
      return [dataRoot];
    },
    build(state, { buildArgs = {} } = {}) {
      const args = [];
      for (const [k, v] of Object.entries(buildArgs)) args.push("--build-arg", `${k}=${v}`);
      return timedBuild(state, args);
    },
    // Docker 20.10 without buildx has no `--cache-to type=local`; its inline cache (BUILDKIT_INLINE_CACHE=1, final
    // stage only) carried as a `docker save` archive and `docker load`ed into an emptied daemon is the nearest equivalent.
    importSupported() {
      return { ok: true, partial: true, note: "inline cache (final stage only) via docker save/load; type=local needs buildx" };
    },
    importSetup(state) {
      reset(state);
      const r = timedBuild(state, ["--build-arg", "BUILDKIT_INLINE_CACHE=1"]);
      state.cacheArchive = join(work, `bk-cache-${state.project.name}.tar`);
      docker(["save", "-o", state.cacheArchive, state.tag]);
      return r;
    },
    importPrepare(state) {
      reset(state);
    },
    importBuild(state) {
      const l = measured(DOCKER, ["load", "-q", "-i", state.cacheArchive], { env });
      const b = timedBuild(state, ["--cache-from", state.tag]);
      return { ...b, ms: l.ms + b.ms, rssKB: Math.max(b.rssKB ?? 0, l.rssKB ?? 0) || null };
    },
    importStoreDirs() {
      return [dataRoot];
    },
    finish(state) {
      reset(state);
      if (state.cacheArchive) rmSync(state.cacheArchive, { force: true });
    },
    async teardown() {
      if (!started) return;
      stop();
      const t0 = Date.now();
      while (started.child.exitCode === null && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 100));
      if (started.child.exitCode === null) {
        log(`BuildKit: dockerd ${started.pid} did not stop on SIGTERM; sending SIGKILL`);
        try {
          process.kill(started.pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
      // dockerd's managed containerd exits with it; unmount anything left under the private root before deleting it.
      const mounts = readFileSync("/proc/self/mounts", "utf8")
        .split("\n")
        .map((l) => l.split(" ")[1])
        .filter((m) => m && m.startsWith(started.base));
      for (const m of mounts.reverse()) tryRun("umount", ["-l", m]);
      rmSync(started.base, { recursive: true, force: true });
      log(`BuildKit: stopped the private dockerd (pid ${started.pid}) and removed ${started.base}`);
    },
  };
  return builder;
}
