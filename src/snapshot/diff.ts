// The change model shared by both snapshotters: a list of changes against the stage rootfs (what overlayfs' upperdir or
// a tree comparison found), applied onto the rootfs in place and turned into the exact LayerEntry[] of the new layer.
import type { BigIntStats } from "node:fs";
import { lstat, mkdir, readdir, readlink, rename, rm, chmod, lchown, lutimes } from "node:fs/promises";
import { chmodSync, copyFileSync, lchownSync, linkSync, lutimesSync, readlinkSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { BuildError } from "../errors.js";
import type { LayerEntry } from "../layer/types.js";
import { hardLinkTracker } from "../layer/hard-links.js";
import { escapeBytes, nonUtf8Name } from "../layer/utf8-names.js";
import { errnoCode } from "../util/errno.js";
import { runQuiet } from "../util/run.js";

export type Change =
  /** The path (and everything below it) is gone: an OCI whiteout `.wh.<name>`. */
  | { kind: "delete"; path: string }
  /** The path now holds the object at `from` (an upperdir or a copied tree); `stat` is its lstat. */
  | { kind: "upsert"; path: string; from: string; stat: BigIntStats };

export async function lstatOrUndefined(p: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(p, { bigint: true });
  } catch (e) {
    if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return undefined;
    throw e;
  }
}

/**
 * Names in a directory, sorted so changes come out in a stable order. A name that is not valid UTF-8 (which a RUN
 * can create, and which no layer entry can carry) is refused by name: lost from the layer it would be silently.
 * `rel`: the directory's path in the rootfs, for the message.
 */
export async function sortedNames(dir: string, rel?: string): Promise<string[]> {
  const names = (await readdir(dir)).sort();
  for (const n of names) {
    const raw = nonUtf8Name(dir, n);
    if (raw === undefined) continue;
    const shown = rel === undefined ? escapeBytes(raw) : `/${rel === "" ? "" : `${rel}/`}${escapeBytes(raw)}`;
    throw new BuildError("NON_UTF8_PATH", `the step created "${shown}", whose name is not valid UTF-8; tsbuild cannot store such a name in a layer`, {
      hint: "rename it to UTF-8 in the same RUN (e.g. `convmv -f latin1 -t utf8 --notest`) or delete it before the RUN ends",
    });
  }
  return names;
}

function childPath(parent: string, name: string): string {
  return parent === "" ? name : `${parent}/${name}`;
}

function sameMeta(a: BigIntStats, b: BigIntStats): boolean {
  return sameDirMeta(a, b) && a.mtimeNs === b.mtimeNs;
}

/**
 * A directory counts as unchanged when its mode and owner are, whatever its times: BuildKit's differs (continuity's
 * and its overlayfs one) do not compare a directory's mtime, so touching one, or making and removing a file in it,
 * adds nothing to the layer.
 */
export function sameDirMeta(a: BigIntStats, b: BigIntStats): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid;
}

/**
 * Compares a tree the process ran in (`current`, a `cp -a` of `base` before the run) against `base` and returns the
 * changes, parents before children. Like BuildKit's double walk, a regular file whose size and nanosecond mtime are
 * unchanged counts as unchanged (contents are not read).
 */
export async function diffTrees(base: string, current: string): Promise<Change[]> {
  const out: Change[] = [];
  await diffDir(base, current, "", true, out);
  return out;
}

const NO_NAMES: ReadonlySet<string> = new Set();

/** The changes below directory `rel` (which both trees have as a directory), appended to `out` as diffTrees finds them. */
export async function diffSubtree(base: string, current: string, rel: string, out: Change[], skip: ReadonlySet<string> = NO_NAMES): Promise<void> {
  await diffDir(base, current, rel, true, out, skip);
}

/** `skip`: names in `current` that are no content (an overlay upper's opaque markers). */
async function diffDir(base: string, current: string, rel: string, baseIsDir: boolean, out: Change[], skip: ReadonlySet<string> = NO_NAMES): Promise<void> {
  const curNames = (await sortedNames(join(current, rel), rel)).filter((n) => !skip.has(n));
  const baseNames = baseIsDir ? await sortedNames(join(base, rel)) : [];
  const curSet = new Set(curNames);
  const names = [...new Set([...curNames, ...baseNames])].sort();
  for (const name of names) {
    const p = childPath(rel, name);
    if (!curSet.has(name)) {
      out.push({ kind: "delete", path: p });
      continue;
    }
    const from = join(current, p);
    const cur = await lstat(from, { bigint: true });
    const old = baseIsDir ? await lstatOrUndefined(join(base, p)) : undefined;
    if (cur.isDirectory()) {
      const sub: Change[] = [];
      const oldIsDir = old?.isDirectory() ?? false;
      await diffDir(base, current, p, oldIsDir, sub, skip);
      if (sub.length > 0 || !old || !oldIsDir || !sameDirMeta(old, cur)) {
        out.push({ kind: "upsert", path: p, from, stat: cur });
        out.push(...sub);
      }
      continue;
    }
    if (old && old.isDirectory() === false && (old.mode & 0o170000n) === (cur.mode & 0o170000n) && sameMeta(old, cur)) {
      if (cur.isFile() && old.size === cur.size) continue;
      if (cur.isSymbolicLink() && (await readlink(join(base, p))) === (await readlink(from))) continue;
      if ((cur.isCharacterDevice() || cur.isBlockDevice()) && cur.rdev === old.rdev) continue;
      if (cur.isFIFO() || cur.isSocket()) continue;
    }
    out.push({ kind: "upsert", path: p, from, stat: cur });
  }
}

/** fuse-overlayfs marks each directory it creates opaque with these entries in the upper dir; never layer content. */
export const OPAQUE_MARKERS: ReadonlySet<string> = new Set([".wh..opq", ".wh..wh..opq"]);

/**
 * Removes mount-point stubs the runtime created: a stub path absent from `rootfs` before the run whose upsert is an
 * empty regular file or an empty directory (ignoring stubs dropped below it).
 */
export async function dropMountStubs(changes: Change[], rootfs: string, stubs: readonly string[]): Promise<Change[]> {
  const byPath = new Map(changes.map((c) => [c.path, c] as const));
  const dropped = new Set<string>();
  const deepestFirst = [...stubs].sort((a, b) => b.split("/").length - a.split("/").length);
  for (const s of deepestFirst) {
    const c = byPath.get(s);
    if (c?.kind !== "upsert") continue;
    if ((await lstatOrUndefined(join(rootfs, s))) !== undefined) continue;
    if (c.stat.isFile() && c.stat.size === 0n) dropped.add(s);
    else if (c.stat.isDirectory()) {
      const names = await readdir(c.from);
      if (names.every((n) => dropped.has(`${s}/${n}`) || OPAQUE_MARKERS.has(n))) dropped.add(s);
    }
  }
  // Creating a stub inside an existing directory (etc/hosts in etc) copies that directory up or bumps its mtime;
  // if nothing else changed below it and its owner and mode are as before, it is not part of the layer either.
  for (const s of [...dropped]) {
    for (let parent = s.slice(0, Math.max(0, s.lastIndexOf("/"))); parent !== ""; parent = parent.slice(0, Math.max(0, parent.lastIndexOf("/")))) {
      const c = byPath.get(parent);
      if (c?.kind !== "upsert" || !c.stat.isDirectory()) break;
      const prefix = `${parent}/`;
      if (changes.some((o) => o.path.startsWith(prefix) && !dropped.has(o.path))) break;
      const before = await lstatOrUndefined(join(rootfs, parent));
      if (!before?.isDirectory() || before.mode !== c.stat.mode || before.uid !== c.stat.uid || before.gid !== c.stat.gid) break;
      dropped.add(parent);
    }
  }
  return dropped.size === 0 ? changes : changes.filter((c) => !dropped.has(c.path));
}

/**
 * The runtime's own mount points (/dev, /proc, /sys) stay in the layer as BuildKit leaves them, but as runc makes
 * them: a point absent from `rootfs` before the run that is an empty directory after it becomes 0755 root:root
 * (crun makes /dev 1755). Its mtime is the run's, as under BuildKit.
 */
export async function normalizeMountPoints(changes: Change[], rootfs: string, points: readonly string[]): Promise<Change[]> {
  const wanted = new Set(points);
  const out: Change[] = [];
  for (const c of changes) {
    if (c.kind !== "upsert" || !wanted.has(c.path) || !c.stat.isDirectory() || (await lstatOrUndefined(join(rootfs, c.path))) !== undefined) {
      out.push(c);
      continue;
    }
    if ((await readdir(c.from)).some((n) => !OPAQUE_MARKERS.has(n)) || ((c.stat.mode & 0o7777n) === 0o755n && c.stat.uid === 0n && c.stat.gid === 0n)) {
      out.push(c);
      continue;
    }
    // chown before chmod (chown clears set-id bits); neither touches the mtime. Without the privilege to chown (an
    // unprivileged sandbox), the owner stays the runtime's, which is that sandbox's root.
    if (c.stat.uid !== 0n || c.stat.gid !== 0n)
      await lchown(c.from, 0, 0).catch((e: unknown) => {
        if (errnoCode(e) !== "EPERM") throw e;
      });
    await chmod(c.from, 0o755);
    out.push({ ...c, stat: await lstat(c.from, { bigint: true }) });
  }
  return out;
}

function splitDev(rdev: bigint): { devmajor: number; devminor: number } {
  // glibc's gnu_dev_major/minor encoding.
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { devmajor: Number(major), devminor: Number(minor) };
}

function whiteoutName(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? `.wh.${path}` : `${path.slice(0, slash)}/.wh.${path.slice(slash + 1)}`;
}

/**
 * Renames `from` to `target`; across filesystems (the stage rootfs is an overlay over a kept snapshot) the object is
 * copied with its owner, mode and times instead, and hardlinked files stay linked to their first copy.
 */
async function moveIntoPlace(from: string, target: string, st: BigIntStats, copiedLinks: Map<string, string>): Promise<void> {
  try {
    await rename(from, target);
    return;
  } catch (e) {
    if (errnoCode(e) !== "EXDEV") throw e;
  }
  if (st.isFile()) {
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1n ? copiedLinks.get(key) : undefined;
    if (first) {
      linkSync(first, target);
      return;
    }
    copyFileSync(from, target);
    if (st.nlink > 1n) copiedLinks.set(key, target);
  } else if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(from), target);
  } else {
    // Device nodes and fifos: rare in RUN output; cp(1) recreates them with their metadata.
    const r = await runQuiet("cp", ["-a", "--", from, target]);
    if (r.code !== 0) throw new Error(`cannot copy ${from}: ${r.stderr.trim() || r.spawnError || `cp exited with ${r.code}`}`);
    return;
  }
  lchownSync(target, Number(st.uid), Number(st.gid));
  if (!st.isSymbolicLink()) chmodSync(target, Number(st.mode & 0o7777n));
  lutimesSync(target, new Date(Number(st.atimeNs / 1_000_000n)), new Date(Number(st.mtimeNs / 1_000_000n)));
}

export interface ApplyOptions {
  /** SOURCE_DATE_EPOCH: entry mtimes later than this are clamped to it (the files on disk keep theirs). */
  epoch?: number;
}

/**
 * Applies `changes` (parents before children) onto `rootfs` — deleting whited-out paths and renaming new objects
 * into place, which consumes the `from` tree — and returns the layer's entries, whose
 * `source` points at the file's final place in `rootfs`.
 */
export async function applyChanges(rootfs: string, changes: Change[], opts: ApplyOptions = {}): Promise<LayerEntry[]> {
  const clamp = (s: number): number => (opts.epoch !== undefined && s > opts.epoch ? opts.epoch : s);
  const entries: LayerEntry[] = [];
  const dirs: { target: string; stat: BigIntStats }[] = [];
  const links = hardLinkTracker();
  const copiedLinks = new Map<string, string>();
  for (const c of changes) {
    const target = join(rootfs, c.path);
    if (c.kind === "delete") {
      await rm(target, { recursive: true, force: true });
      entries.push({ path: whiteoutName(c.path), type: "file", mode: 0, uid: 0, gid: 0, mtime: opts.epoch ?? 0, size: 0 });
      continue;
    }
    const st = c.stat;
    const base = {
      path: c.path,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtime: clamp(Number(st.mtimeNs / 1_000_000_000n)),
    };
    const existing = await lstatOrUndefined(target);
    if (st.isDirectory()) {
      if (existing && !existing.isDirectory()) await rm(target, { recursive: true, force: true });
      if (!existing || !existing.isDirectory()) await mkdir(target);
      // Metadata is set after the children are in place: creating them would bump the mtime again.
      dirs.push({ target, stat: st });
      entries.push({ ...base, type: "directory" });
      continue;
    }
    let entry: LayerEntry;
    if (st.isFile()) entry = { ...base, type: "file", size: Number(st.size), source: target };
    else if (st.isSymbolicLink()) entry = { ...base, type: "symlink", linkname: await readlink(c.from) };
    else if (st.isCharacterDevice()) entry = { ...base, type: "char-device", ...splitDev(st.rdev) };
    else if (st.isBlockDevice()) entry = { ...base, type: "block-device", ...splitDev(st.rdev) };
    else if (st.isFIFO()) entry = { ...base, type: "fifo" };
    else continue; // sockets cannot be stored in a tar; Docker drops them too
    if (existing) await rm(target, { recursive: true, force: true });
    await moveIntoPlace(c.from, target, st, copiedLinks);
    entries.push(entry);
    links.add(st, entry);
  }
  for (const { target, stat } of dirs.reverse()) {
    await lchown(target, Number(stat.uid), Number(stat.gid));
    // chmod after chown: chown clears setuid/setgid bits.
    await chmod(target, Number(stat.mode & 0o7777n));
    await lutimes(target, new Date(Number(stat.atimeNs / 1_000_000n)), new Date(Number(stat.mtimeNs / 1_000_000n)));
  }
  // Hard links within the layer: the walk-first path (the one the tar writes first) carries the data.
  links.link();
  return entries;
}
