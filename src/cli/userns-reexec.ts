// Rootless builds: an ordinary user's tsbuild re-executes itself as root of a new user + mount namespace, as
// `buildah unshare` and rootlesskit do. The child (unshare, then sh) says when it is inside the new namespace and
// waits on a pipe; we write its id maps — the user's subordinate ids through newuidmap/newgidmap (Debian uidmap), or
// only the user's own id without them — and let it exec tsbuild again, now uid 0 of the namespace. File operations
// there see container ids, so layers record 0:0, 1000:1000 as a root build's do. The library never re-executes:
// it reads which namespace it is in (util/user-namespace.ts). The child dies with us (parent-death SIGKILL).
import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { constants, userInfo } from "node:os";
import type { Readable, Writable } from "node:stream";
import { isatty } from "node:tty";
import { EnvironmentError } from "../errors.js";
import { findOnPath } from "../executor/select-executor.js";
import { runQuiet } from "../util/run.js";
import { subordinateRanges, type IdRange } from "../util/subids.js";

/**
 * Commands that never run RUN nor touch files owned by subordinate ids (snapshots, cache mounts, build scratch) stay
 * outside: the re-exec costs a node start and two helper runs (≈0.25 s). Blobs and records belong to the user itself
 * either way. `doctor` must see the real user.
 */
const OUTSIDE = new Set([
  ...["doctor", "parse", "check", "login", "logout", "platforms", "help", "version", "--version", "--help", "-h"],
  ...["images", "inspect", "history", "tag", "rmi", "save", "load", "pull", "push"],
]);

/** Set in the re-executed child: never re-execute twice, whatever its uid turned out to be. */
export const USERNS_ENV = "TSBUILD_USERNS";

export function needsUserNamespace(argv: readonly string[], uid: number, env: NodeJS.ProcessEnv): boolean {
  if (uid === 0 || env[USERNS_ENV] !== undefined) return false;
  const first = argv[0];
  return first !== undefined && !OUTSIDE.has(first);
}

export type IdMapPlan =
  | { kind: "subids"; uidMap: string[]; gidMap: string[] }
  /** Only the user's own ids; `why` says what is missing. */
  | { kind: "single"; uid: number; gid: number; why: string };

/** newuidmap's triples: our own id as 0, then the subordinate ranges from 1 up, in file order. */
function mapArgs(own: number, ranges: readonly IdRange[]): string[] {
  const out = ["0", String(own), "1"];
  let next = 1;
  for (const r of ranges) {
    out.push(String(next), String(r.start), String(r.count));
    next += r.count;
  }
  return out;
}

/** Which maps the namespace gets: subordinate ids when the user has both ranges and the tools, else its own id only. */
export function planIdMaps(uid: number, gid: number, subuid: readonly IdRange[], subgid: readonly IdRange[], missingTools: readonly string[]): IdMapPlan {
  if (missingTools.length > 0) return { kind: "single", uid, gid, why: `${missingTools.join(" and ")} not on PATH (apt-get install -y uidmap)` };
  if (subuid.length === 0 || subgid.length === 0)
    return { kind: "single", uid, gid, why: `no ${subuid.length === 0 ? "/etc/subuid" : "/etc/subgid"} range for this user` };
  return { kind: "subids", uidMap: mapArgs(uid, subuid), gidMap: mapArgs(gid, subgid) };
}

/** The plan for this process's user, from /etc/subuid, /etc/subgid and PATH. */
export async function currentIdMapPlan(env: NodeJS.ProcessEnv = process.env): Promise<IdMapPlan> {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  let name = env["USER"] ?? String(uid);
  try {
    name = userInfo().username;
  } catch {
    // no passwd entry: ranges may still be listed by uid
  }
  const [subuid, subgid] = await Promise.all(["/etc/subuid", "/etc/subgid"].map((f) => readFile(f, "utf8").catch(() => "")));
  const missing: string[] = [];
  for (const t of ["newuidmap", "newgidmap"]) if ((await findOnPath(t, env["PATH"] ?? "")) === undefined) missing.push(t);
  return planIdMaps(uid, gid, subordinateRanges(subuid ?? "", name, uid), subordinateRanges(subgid ?? "", name, gid), missing);
}

export function describePlan(plan: IdMapPlan): string {
  if (plan.kind === "single") return `uid 0 → ${plan.uid} only (${plan.why}): files can belong to no other id`;
  const triples = (m: string[]) => {
    const parts: string[] = [];
    for (let i = 0; i < m.length; i += 3) parts.push(`${m[i]}→${m[i + 1]}${m[i + 2] === "1" ? "" : `+${m[i + 2]}`}`);
    return parts.join(", ");
  };
  return `uids ${triples(plan.uidMap)}; gids ${triples(plan.gidMap)}`;
}

const HINT = "run `tsbuild doctor`: it checks user namespaces, newuidmap and your subuid ranges";

async function writeMaps(pid: number, plan: IdMapPlan): Promise<void> {
  if (plan.kind === "single") {
    // An unprivileged process may map only its own ids, and only after giving up setgroups(2) in the namespace.
    await writeFile(`/proc/${pid}/setgroups`, "deny");
    await writeFile(`/proc/${pid}/uid_map`, `0 ${plan.uid} 1\n`);
    await writeFile(`/proc/${pid}/gid_map`, `0 ${plan.gid} 1\n`);
    return;
  }
  for (const [tool, args] of [
    ["newuidmap", plan.uidMap],
    ["newgidmap", plan.gidMap],
  ] as const) {
    const r = await runQuiet(tool, [String(pid), ...args]);
    if (r.code !== 0)
      throw new EnvironmentError("USERNS_FAILED", `cannot map your subordinate ids: ${tool} failed: ${r.stderr.trim() || r.spawnError || `exit ${r.code}`}`, {
        hint: `check /etc/subuid and /etc/subgid (e.g. \`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${process.env["USER"] ?? "USER"}\`); ${HINT}`,
      });
  }
}

// fd 4: "inside the namespace"; fd 3: "maps written, go on". The maps must exist before the exec, so that tsbuild
// starts as uid 0 with the namespace's capabilities. setpriv makes the exec'd tsbuild die with us.
const CHILD_SCRIPT = 'echo >&4; exec 4>&-; read -r go <&3 || exit 125; exec 3<&-; [ "$go" = go ] || exit 125; exec setpriv --pdeathsig KILL -- "$@"';

const FORWARDED = ["SIGTERM", "SIGHUP", "SIGQUIT", "SIGINT"] as const;

/**
 * Runs this CLI invocation again inside a new user namespace and resolves with its exit status. Throws an
 * EnvironmentError (USERNS_FAILED) when the namespace cannot be made or mapped.
 */
export async function runInUserNamespace(argv: readonly string[], opts: { debug?: (line: string) => void } = {}): Promise<number> {
  const plan = await currentIdMapPlan();
  opts.debug?.(`rootless: re-executing in a user namespace: ${describePlan(plan)}`);
  const script = process.argv[1] as string;
  const child = spawn(
    "unshare",
    ["--user", "--mount", "--propagation", "private", "--", "sh", "-c", CHILD_SCRIPT, "tsbuild-userns", process.execPath, ...process.execArgv, script, ...argv],
    { stdio: ["inherit", "inherit", "inherit", "pipe", "pipe"], env: { ...process.env, [USERNS_ENV]: plan.kind } },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.once("error", (error) => resolve({ code: null, signal: null, error }));
  });
  // A Ctrl-C on a terminal reaches the child itself (same process group); a signal sent to us alone is passed on.
  // isatty, not process.stdin: opening that stream would make the fd the child inherits non-blocking.
  const onTerminal = isatty(0) || isatty(2);
  const forward = (sig: NodeJS.Signals) => () => {
    if (sig === "SIGINT" && onTerminal) return;
    child.kill(sig);
  };
  const handlers = FORWARDED.map((sig) => [sig, forward(sig)] as const);
  for (const [sig, h] of handlers) process.on(sig, h);
  try {
    const ready = new Promise<boolean>((resolve) => {
      (child.stdio[4] as Readable).once("data", () => resolve(true));
      (child.stdio[4] as Readable).once("end", () => resolve(false));
      void exited.then(() => resolve(false));
    });
    if (!(await ready)) {
      const r = await exited;
      throw new EnvironmentError(
        "USERNS_FAILED",
        `cannot create a user namespace for a rootless build: ${
          r.error
            ? (r.error as NodeJS.ErrnoException).code === "ENOENT"
              ? "unshare is not on PATH (apt-get install -y util-linux)"
              : `unshare: ${r.error.message}`
            : `unshare exited with ${r.code ?? r.signal}`
        }`,
        { hint: `user namespaces may be disabled here (kernel.unprivileged_userns_clone, user.max_user_namespaces, AppArmor); ${HINT}` },
      );
    }
    try {
      await writeMaps(child.pid as number, plan);
    } catch (e) {
      child.kill("SIGKILL");
      await exited;
      if (e instanceof EnvironmentError) throw e;
      throw new EnvironmentError("USERNS_FAILED", `cannot write the user namespace's id maps: ${String(e)}`, { hint: HINT, cause: e });
    }
    (child.stdio[3] as Writable).end("go\n");
    const r = await exited;
    if (r.signal) return 128 + (constants.signals[r.signal] ?? 0);
    return r.code ?? 1;
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}
