// Which user namespace this process is in, read from /proc/self/uid_map: real root (the initial namespace) or root of
// a rootless build's namespace, and which ids are mapped there. The library asks this instead of `getuid() === 0`,
// because inside the namespace tsbuild re-executes into (cli/userns-reexec.ts) it is uid 0 without being host root.
import { readFileSync } from "node:fs";
import { EnvironmentError } from "../errors.js";

export interface IdMapping {
  /** First id inside the namespace. */
  inside: number;
  /** The host id it maps to. */
  outside: number;
  count: number;
}

/** uid_map / gid_map text → its lines. */
export function parseIdMap(text: string): IdMapping[] {
  const out: IdMapping[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length === 3 && f.every((n) => Number.isInteger(n) && n >= 0)) out.push({ inside: f[0] as number, outside: f[1] as number, count: f[2] as number });
  }
  return out;
}

export interface UserNamespaceInfo {
  /** Not real root: an ordinary user, or root of a user namespace other than the initial one. */
  rootless: boolean;
  /** The host uid this process runs as (the namespace's owner for a rootless build). */
  hostUid: number;
  /** Only one id is mapped (no subordinate ids): files can belong to no other id. */
  singleId: boolean;
  /** Whether uid `id` exists inside this namespace (an unmapped id cannot own a file or run a process). */
  mapped(id: number): boolean;
  /** The same for a gid. */
  mappedGid(id: number): boolean;
}

const INITIAL_COUNT = 4294967295;

/** The namespace facts for `uid` given uid_map/gid_map text (tests pass them; the default reads this process's). */
export function userNamespaceInfo(
  uid: number = process.getuid?.() ?? 0,
  uidMap: string = readMap("uid_map"),
  gidMap: string = readMap("gid_map"),
): UserNamespaceInfo {
  const map = parseIdMap(uidMap);
  const gids = parseIdMap(gidMap);
  const inMap = (m: IdMapping[], id: number) => m.some((r) => id >= r.inside && id < r.inside + r.count);
  const initial = map.length === 1 && map[0]?.inside === 0 && map[0].outside === 0 && map[0].count === INITIAL_COUNT;
  const own = map.find((m) => uid >= m.inside && uid < m.inside + m.count);
  const hostUid = own ? own.outside + (uid - own.inside) : uid;
  const total = map.reduce((n, m) => n + m.count, 0);
  return {
    rootless: uid !== 0 || !initial,
    hostUid,
    singleId: total === 1,
    mapped: (id) => inMap(map, id),
    mappedGid: (id) => inMap(gids, id),
  };
}

/**
 * What files on disk mean under this namespace: "" for real root, else its uid and gid maps. Files unpacked under one
 * mapping show other owners under another (a rootless store used with a changed subuid range, or by root).
 */
export function idMapFingerprint(uidMap: string = readMap("uid_map"), gidMap: string = readMap("gid_map")): string {
  if (!userNamespaceInfo(0, uidMap, gidMap).rootless) return "";
  const norm = (t: string) =>
    parseIdMap(t)
      .map((m) => `${m.inside}:${m.outside}:${m.count}`)
      .join(",");
  return `uid=${norm(uidMap)};gid=${norm(gidMap)}`;
}

function readMap(name: "uid_map" | "gid_map"): string {
  try {
    return readFileSync(`/proc/self/${name}`, "utf8");
  } catch {
    return `0 0 ${INITIAL_COUNT}\n`; // no /proc: assume the initial namespace, as before namespaces existed
  }
}

const SUBIDS_FIX = "usermod --add-subuids 100000-165535 --add-subgids 100000-165535";

/** Why an id cannot be used in this namespace, and the fix (for messages). */
function unmappedWhy(ns: UserNamespaceInfo, env: NodeJS.ProcessEnv): { why: string; hint: string } {
  const user = env["USER"] || "USER";
  return ns.singleId
    ? {
        why: `only your own id is mapped into tsbuild's user namespace (no subordinate ids for ${user} in /etc/subuid and /etc/subgid)`,
        hint: `as root: \`${SUBIDS_FIX} ${user}\`, then build again; \`tsbuild doctor\` checks the ranges`,
      }
    : {
        why: "that id is outside the subordinate range mapped into tsbuild's user namespace",
        hint: `give ${user} a larger range in /etc/subuid and /etc/subgid (65536 ids cover every image); \`tsbuild doctor\` checks them`,
      };
}

/**
 * The clear error for a chown a rootless build's namespace cannot do (the kernel says EINVAL for an unmapped id), or
 * undefined when `e` is something else. `what` names the instruction ("COPY").
 */
export function unmappedOwnerError(e: unknown, what: string, ns: UserNamespaceInfo = userNamespaceInfo(), env = process.env): EnvironmentError | undefined {
  const err = e as NodeJS.ErrnoException | undefined;
  if (!ns.rootless || err?.code !== "EINVAL" || !/chown$/.test(err.syscall ?? "")) return undefined;
  const { why, hint } = unmappedWhy(ns, env);
  return new EnvironmentError("NO_SUBORDINATE_IDS", `${what}: a file needs an owner other than you: ${why}`, { hint, cause: e });
}

/** The same error for a RUN whose uid or one of its gids (primary first) does not exist in the namespace. */
export function unmappedUserError(
  uid: number,
  gids: readonly number[],
  ns: UserNamespaceInfo = userNamespaceInfo(),
  env = process.env,
): EnvironmentError | undefined {
  if (!ns.rootless) return undefined;
  const bad = ns.mapped(uid) ? gids.find((g) => !ns.mappedGid(g)) : uid;
  if (bad === undefined) return undefined;
  const { why, hint } = unmappedWhy(ns, env);
  return new EnvironmentError("NO_SUBORDINATE_IDS", `cannot run as ${ns.mapped(uid) ? `group ${bad}` : `uid ${bad}`}: ${why}`, { hint });
}
