// Which user namespace this process is in, read from /proc/self/uid_map: real root (the initial namespace) or root of
// a rootless build's namespace, and which ids are mapped there. The library asks this instead of `getuid() === 0`,
// because inside the namespace tsbuild re-executes into (cli/userns-reexec.ts) it is uid 0 without being host root.
import { readFileSync } from "node:fs";

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
  /** Whether `id` exists inside this namespace (an unmapped id cannot own a file or run a process). */
  mapped(id: number): boolean;
}

const INITIAL_COUNT = 4294967295;

/** The namespace facts for `uid` given uid_map text (tests pass both; the default reads this process's). */
export function userNamespaceInfo(uid: number = process.getuid?.() ?? 0, uidMap: string = readUidMap()): UserNamespaceInfo {
  const map = parseIdMap(uidMap);
  const initial = map.length === 1 && map[0]?.inside === 0 && map[0].outside === 0 && map[0].count === INITIAL_COUNT;
  const own = map.find((m) => uid >= m.inside && uid < m.inside + m.count);
  const hostUid = own ? own.outside + (uid - own.inside) : uid;
  const total = map.reduce((n, m) => n + m.count, 0);
  return {
    rootless: uid !== 0 || !initial,
    hostUid,
    singleId: total === 1,
    mapped: (id) => map.some((m) => id >= m.inside && id < m.inside + m.count),
  };
}

function readUidMap(): string {
  try {
    return readFileSync("/proc/self/uid_map", "utf8");
  } catch {
    return `0 0 ${INITIAL_COUNT}\n`; // no /proc: assume the initial namespace, as before namespaces existed
  }
}
