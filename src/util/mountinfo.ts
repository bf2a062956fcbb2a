// /proc/self/mountinfo as typed entries (proc(5)), with the kernel's octal escapes (\040 space, \011 tab, \012
// newline, \134 backslash) undone: the one parser for "what is mounted below this dir" and for cgroup mounts.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";

export interface MountInfo {
  mountId: number;
  parentId: number;
  /** `major:minor` of the device. */
  device: string;
  /** The path inside the mounted filesystem that is the mount's root (a bind mount's source). */
  root: string;
  mountPoint: string;
  /** Per-mount options (`rw,nosuid,relatime`). */
  mountOptions: string[];
  /** Tagged fields before the `-` separator (`shared:1`, `master:2`). */
  optionalFields: string[];
  fsType: string;
  source: string;
  /** Per-superblock options (`rw,size=65536k`, or a cgroup v1 mount's controllers). */
  superOptions: string[];
}

/** Undo mountinfo's `\ooo` octal escapes. */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parse mountinfo text; malformed lines are skipped (the kernel writes the file, but a truncated read is possible). */
export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const sep = fields.indexOf("-", 6);
    if (sep < 0 || fields.length < sep + 3) continue;
    const [mountId, parentId, device, root, mountPoint, mountOptions] = fields as [string, string, string, string, string, string];
    const [fsType, source, superOptions] = fields.slice(sep + 1) as [string, string, string | undefined];
    out.push({
      mountId: Number(mountId),
      parentId: Number(parentId),
      device,
      root: unescapeMountField(root),
      mountPoint: unescapeMountField(mountPoint),
      mountOptions: mountOptions.split(","),
      optionalFields: fields.slice(6, sep),
      fsType: unescapeMountField(fsType),
      source: unescapeMountField(source),
      superOptions: (superOptions ?? "").split(",").filter((o) => o !== ""),
    });
  }
  return out;
}

/** This process's mount table. */
export async function readMountinfo(): Promise<MountInfo[]> {
  return parseMountinfo(await readFile("/proc/self/mountinfo", "utf8"));
}

/**
 * Mount points at or below `dir`, each once, deepest first (the order to unmount them in). `mounts` defaults to
 * this process's table; a table that cannot be read counts as no mounts.
 */
export async function mountsUnder(dir: string, mounts?: readonly MountInfo[]): Promise<string[]> {
  const root = resolve(dir);
  const table = mounts ?? (await readMountinfo().catch(() => [] as MountInfo[]));
  const prefix = root === "/" ? "/" : `${root}/`;
  const out = new Set<string>();
  for (const m of table) if (m.mountPoint === root || m.mountPoint.startsWith(prefix)) out.add(m.mountPoint);
  return [...out].sort((a, b) => b.split("/").length - a.split("/").length || b.length - a.length);
}
