// Safe layer extraction into a rootfs directory, applying OCI whiteouts. Nothing is ever written outside `dest`:
// unsafe names are rejected, parent symlinks are resolved inside dest (chroot-style), and the final path component
// is never followed (an existing file, link or directory there is replaced, as docker does).
import { userNamespaceInfo } from "../util/user-namespace.js";
import { execFile } from "node:child_process";
import * as fsSync from "node:fs";
import { constants } from "node:fs";
import { open, realpath, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import tar, { type Header } from "tar-stream";
import { AbortError, ArchiveError } from "../errors.js";
import { decompressStream } from "./compression.js";
import type { EntryType, LayerEntry } from "./types.js";
import { errnoCode } from "../util/errno.js";

// Per-entry metadata syscalls run synchronously behind promise-returning wrappers: each takes microseconds, while
// the async versions wait for a threadpool round trip, and a layer has them serially per entry. A 400-entry busybox
// layer spent most of its ~300 ms extraction idle before this. File contents still stream asynchronously.
/** Files up to this size are written with one synchronous call. */
const SMALL_FILE = 1 << 20;
const lstat = async (p: string) => fsSync.lstatSync(p);
const readlink = async (p: string) => fsSync.readlinkSync(p);
const readdir = async (p: string) => fsSync.readdirSync(p);
const mkdir = async (p: string, o: { mode: number }) => void fsSync.mkdirSync(p, o);
const symlink = async (target: string, p: string) => fsSync.symlinkSync(target, p);
const link = async (existing: string, p: string) => fsSync.linkSync(existing, p);
const lchown = async (p: string, uid: number, gid: number) => fsSync.lchownSync(p, uid, gid);
const chmod = async (p: string, mode: number) => fsSync.chmodSync(p, mode);
const utimes = async (p: string, a: number, m: number) => fsSync.utimesSync(p, a, m);
const lutimes = async (p: string, a: number, m: number) => fsSync.lutimesSync(p, a, m);

// Promisified at first use: promisify() here would load child_process on every start, no-op rebuilds included.
const run = (file: string, args: string[]) => promisify(execFile)(file, args);

export interface ExtractLayerOptions {
  signal?: AbortSignal;
  /** Running with root privileges: chown entries and create device nodes. Default: whether the process uid is 0. */
  root?: boolean;
  /** Called for every tar entry (whiteouts included) before it is applied; `source` is never set. */
  onEntry?(e: LayerEntry): void;
  /**
   * Leave device nodes out (the local exporter: a node recreated in a user's directory with the image's mode, say
   * brw-rw-rw- 7,0, would hand the host device to anyone who can reach it). Each skipped entry is reported here.
   */
  skipDevices?(e: LayerEntry): void;
  /**
   * Only follow symlinks this extraction (or an earlier one sharing the set) created: a symlink already in `dest`
   * that this set does not hold (`etc -> /etc` in a local export directory) is refused, never written through.
   * Every symlink created is added. Unset: any symlink inside dest is followed chroot-style (a rootfs of earlier layers).
   */
  ownLinks?: Set<string>;
  /**
   * A plain tar, not a layer (a build context from stdin or a URL): `.wh.` names are ordinary files, and a member
   * below a symlink is refused (UNSAFE_PATH) instead of resolved chroot-style, so links are kept but never followed.
   */
  plainTar?: boolean;
  /**
   * ADD of a local archive: names, hardlink targets and parent symlinks resolve as inside a chroot at `dest`, as
   * BuildKit's untar does (it runs chrooted there): `../x` and `/x` land at `dest/x`, never outside. Default: a layer,
   * where such names are refused. A hardlink member's owner, mode and mtime are applied to the shared inode, as there.
   */
  chrootNames?: boolean;
}

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE = ".wh..wh..opq";
// Linux's own limit on symlinks followed during one path resolution.
const MAX_SYMLINK_HOPS = 40;

type TarHeader = Header & { pax?: Record<string, string> | null };

const ENTRY_TYPE: Partial<Record<Header["type"], EntryType>> = {
  file: "file",
  "contiguous-file": "file",
  directory: "directory",
  symlink: "symlink",
  link: "hardlink",
  "character-device": "char-device",
  "block-device": "block-device",
  fifo: "fifo",
};

function unsafe(name: string, why: string): ArchiveError {
  return new ArchiveError("UNSAFE_PATH", `refusing to extract layer entry ${JSON.stringify(name)}: ${why}`);
}

/**
 * The components of an entry name (or hardlink target). A layer's absolute names and any `..` are refused (no
 * legitimate layer needs them); with `chroot` they are resolved as a chrooted process would: from the root, never above it.
 */
function splitName(name: string, entryName = name, what = "path", chroot = false): string[] {
  const shown = what === "path" ? what : `${what} ${JSON.stringify(name)}`;
  if (name.startsWith("/") && !chroot) throw unsafe(entryName, `${shown} is absolute`);
  let parts = name.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.some((c) => c.includes("\0"))) throw unsafe(entryName, `${shown} contains a NUL byte`);
  if (parts.includes("..")) {
    if (!chroot) throw unsafe(entryName, `${shown} contains '..'`);
    parts = parts.reduce<string[]>((out, c) => (c === ".." ? out.slice(0, -1) : [...out, c]), []);
  }
  return parts;
}

function headerToEntry(h: TarHeader): LayerEntry {
  const type = ENTRY_TYPE[h.type];
  if (!type) throw new ArchiveError("UNSUPPORTED_ENTRY", `layer entry ${JSON.stringify(h.name)} has unsupported tar type ${String(h.type)}`);
  const pax = h.pax ?? {};
  const num = (v: string | undefined, fallback: number) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : fallback);
  const e: LayerEntry = {
    path: h.name.replace(/^(\.\/)+/, "").replace(/\/+$/, ""),
    type,
    mode: (h.mode ?? 0) & 0o7777,
    uid: num(pax["uid"], h.uid ?? 0),
    gid: num(pax["gid"], h.gid ?? 0),
    mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
  };
  if (type === "file") e.size = h.size ?? 0;
  if ((type === "symlink" || type === "hardlink") && h.linkname) e.linkname = h.linkname;
  if (type === "char-device" || type === "block-device") {
    e.devmajor = h.devmajor ?? 0;
    e.devminor = h.devminor ?? 0;
  }
  const xattrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(pax)) if (k.startsWith("SCHILY.xattr.")) xattrs[k.slice("SCHILY.xattr.".length)] = v;
  if (Object.keys(xattrs).length > 0) e.xattrs = xattrs;
  return e;
}

/**
 * Applies a directory's final mode and mtime through a descriptor opened without following a final symlink, and only
 * if it is still the directory created: otherwise a layer holding `a/` then `a -> /etc/shadow` would chmod the host file.
 */
function setDirMeta(d: { path: string; mode: number; mtime: number; dev: number; ino: number }): void {
  let fd: number;
  try {
    fd = fsSync.openSync(d.path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = errnoCode(e);
    // Replaced or removed by a later entry: nothing of ours to fix up.
    if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") return;
    if (code !== "EACCES") throw e;
    // Unprivileged and a directory we may not read: check by lstat (never follows) and chmod by path.
    const st = fsSync.lstatSync(d.path);
    if (!st.isDirectory() || st.dev !== d.dev || st.ino !== d.ino) return;
    fsSync.chmodSync(d.path, d.mode);
    fsSync.utimesSync(d.path, d.mtime, d.mtime);
    return;
  }
  try {
    const st = fsSync.fstatSync(fd);
    if (st.dev !== d.dev || st.ino !== d.ino) return;
    fsSync.fchmodSync(fd, d.mode);
    fsSync.futimesSync(fd, d.mtime, d.mtime);
  } finally {
    fsSync.closeSync(fd);
  }
}

// Through the synchronous `lstat` above, not util's lstatMaybe: per-entry calls must not wait for the thread pool.
async function lstatOrUndefined(p: string) {
  try {
    return await lstat(p);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw e;
  }
}

async function drain(s: Readable): Promise<void> {
  for await (const _ of s) void _;
}

/** Iterate a layer tar's entries (metadata only; content is skipped). Compressed input is detected and decompressed. */
export async function* listLayer(input: Readable): AsyncGenerator<LayerEntry> {
  const { stream } = await decompressStream(input);
  const ex = tar.extract();
  const feeding = pipeline(stream, ex);
  feeding.catch(() => undefined);
  try {
    for await (const entry of ex) {
      const e = headerToEntry(entry.header as TarHeader);
      await drain(entry as unknown as Readable);
      yield e;
    }
    await feeding;
  } finally {
    if (!ex.destroyed) ex.destroy();
    stream.destroy();
  }
}

/** Extract a (possibly compressed) layer tar into the existing directory `dest`. */
export async function extractLayer(input: Readable, dest: string, opts: ExtractLayerOptions = {}): Promise<void> {
  const { signal } = opts;
  const asRoot = opts.root ?? process.getuid?.() === 0;
  // Root of a rootless build's user namespace owns files but cannot make device nodes (mknod needs host root).
  const devices = asRoot && (opts.root !== undefined || !userNamespaceInfo().rootless);
  const rootAbs = await realpath(dest);
  // Real paths written by this layer: an opaque whiteout must keep them (it sorts after names like "dir/-x").
  const written = new Set<string>();
  // Resolved parent directories; cleared whenever something is removed, as that can change a resolution.
  const resolved = new Map<string, string>();
  // Directory mode and mtime are applied last: writing children would bump the mtime, and a 0555 dir would block them.
  // The inode is kept: by then a later entry may have put a symlink at (or above) that path, which must not be followed.
  const dirs: { path: string; mode: number; mtime: number; dev: number; ino: number }[] = [];

  /** The real path (inside dest) of the directory reached by `comps`, resolving symlinks chroot-style. */
  async function resolveDir(comps: string[], entryName: string, create: boolean): Promise<string | undefined> {
    const key = comps.join("/");
    const hit = resolved.get(key);
    if (hit !== undefined) return hit;
    const stack: string[] = [];
    const queue = [...comps];
    let hops = 0;
    while (queue.length > 0) {
      const c = queue.shift() as string;
      if (c === "" || c === ".") continue;
      if (c === "..") {
        // Only a symlink target can bring us here; climbing out of the rootfs is an escape attempt.
        if (stack.length === 0 && !opts.chrootNames) throw unsafe(entryName, "a parent symlink points outside the rootfs");
        stack.pop();
        continue;
      }
      const p = join(rootAbs, ...stack, c);
      const st = await lstatOrUndefined(p);
      if (!st) {
        if (!create) return undefined;
        await mkdir(p, { mode: 0o755 });
        stack.push(c);
        continue;
      }
      if (st.isSymbolicLink()) {
        if (opts.plainTar) throw unsafe(entryName, `${join(...stack, c)} is a symlink, and tsbuild never extracts through one`);
        if (opts.ownLinks && !opts.ownLinks.has(p))
          throw new ArchiveError(
            "DEST_HAS_SYMLINK",
            `refusing to extract layer entry ${JSON.stringify(entryName)}: ${p} is a symlink that was already in the destination (to ${JSON.stringify(await readlink(p))})`,
            {
              hint: "export into an empty directory, or remove the symlink first; tsbuild never writes through links it did not create",
            },
          );
        if (++hops > MAX_SYMLINK_HOPS)
          throw new ArchiveError("SYMLINK_LOOP", `too many levels of symbolic links resolving layer entry ${JSON.stringify(entryName)}`);
        const target = await readlink(p);
        // An absolute target means the rootfs root, as it will inside the container.
        if (target.startsWith("/")) stack.length = 0;
        queue.unshift(...target.split("/"));
        continue;
      }
      if (!st.isDirectory())
        throw new ArchiveError("NOT_A_DIRECTORY", `cannot extract layer entry ${JSON.stringify(entryName)}: ${join(...stack, c)} is not a directory`);
      stack.push(c);
    }
    const abs = join(rootAbs, ...stack);
    resolved.set(key, abs);
    return abs;
  }

  async function remove(p: string): Promise<void> {
    await rm(p, { recursive: true, force: true });
    resolved.clear();
  }

  /** Opaque whiteout: drop everything under `dir` that this layer did not write itself. */
  async function clearLower(dir: string): Promise<void> {
    for (const name of await readdir(dir)) {
      const p = join(dir, name);
      if (!written.has(p)) await remove(p);
      else if ((await lstat(p)).isDirectory()) await clearLower(p);
    }
  }

  async function setXattrs(p: string, xattrs: Record<string, string>): Promise<void> {
    for (const [k, v] of Object.entries(xattrs)) {
      // Node has no xattr API; setfattr (package attr) does it. Best effort: namespaces like security.* need privileges.
      await run("setfattr", ["-h", "-n", k, "-v", `0s${Buffer.from(v, "utf8").toString("base64")}`, p]).catch(() => undefined);
    }
  }

  async function apply(entry: Readable, h: TarHeader): Promise<void> {
    const e = headerToEntry(h);
    const parts = splitName(h.name, h.name, "path", opts.chrootNames);
    opts.onEntry?.(e);
    const name = parts.pop();
    if (name === undefined) return; // the root itself ("./"): dest's own metadata is not the layer's to change
    const base = name;

    if (base.startsWith(WHITEOUT_PREFIX) && !opts.plainTar) {
      const parent = await resolveDir(parts, h.name, base === OPAQUE);
      if (parent === undefined) return;
      if (base === OPAQUE) {
        await clearLower(parent);
        return;
      }
      const hidden = base.slice(WHITEOUT_PREFIX.length);
      // ".wh..wh.*" other than the opaque marker are AUFS internals with nothing to apply.
      if (hidden.startsWith(WHITEOUT_PREFIX)) return;
      if (hidden === "" || hidden === "." || hidden === "..") throw unsafe(h.name, "whiteout of an invalid name");
      await remove(join(parent, hidden));
      return;
    }

    const parent = (await resolveDir(parts, h.name, true)) as string;
    const target = join(parent, base);

    // Validate a hardlink's target before touching anything at `target`.
    let linkSource: string | undefined;
    if (e.type === "hardlink") {
      const lparts = splitName(e.linkname ?? "", h.name, "hardlink target", opts.chrootNames);
      const lname = lparts.pop();
      if (lname === undefined) throw unsafe(h.name, "hardlink to the rootfs itself");
      const lparent = await resolveDir(lparts, h.name, false);
      const lst = lparent === undefined ? undefined : await lstatOrUndefined(join(lparent, lname));
      if (!lparent || !lst)
        throw new ArchiveError(
          "HARDLINK_TARGET_MISSING",
          `layer entry ${JSON.stringify(h.name)} links to ${JSON.stringify(e.linkname)}, which does not exist in the rootfs`,
          { hint: "a hard-link member must name a file that comes earlier in the same tar (or, in an image layer, in the layers below it)" },
        );
      if (lst.isDirectory())
        throw new ArchiveError("HARDLINK_TO_DIRECTORY", `layer entry ${JSON.stringify(h.name)} is a hardlink to the directory ${JSON.stringify(e.linkname)}`);
      linkSource = join(lparent, lname);
      if (linkSource === target) return; // a link to itself changes nothing
    }

    const existing = await lstatOrUndefined(target);
    if (existing && !(e.type === "directory" && existing.isDirectory())) await remove(target);

    switch (e.type) {
      case "directory":
        if (!existing?.isDirectory()) await mkdir(target, { mode: 0o700 });
        break;
      case "file": {
        // O_EXCL|O_NOFOLLOW: never write through something that appeared at target since the lstat.
        const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
        if ((h.size ?? 0) <= SMALL_FILE) {
          // Small files in one synchronous write: three thread-pool round trips per file made unpacking a
          // 5,000-file layer take seconds.
          const chunks: Buffer[] = [];
          for await (const c of entry) chunks.push(c as Buffer);
          const fd = fsSync.openSync(target, flags, 0o600);
          try {
            const data = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
            for (let off = 0; off < data.length;) off += fsSync.writeSync(fd, data, off);
          } finally {
            fsSync.closeSync(fd);
          }
          break;
        }
        const fh = await open(target, flags, 0o600);
        await pipeline(entry, fh.createWriteStream(), signal ? { signal } : {});
        break;
      }
      case "symlink":
        await symlink(e.linkname ?? "", target);
        opts.ownLinks?.add(target);
        break;
      case "hardlink":
        await link(linkSource as string, target);
        // A layer's link shares its target's inode and so its metadata; Docker's untar (ADD) also applies the link
        // header's owner, mode and mtime to that inode.
        if (opts.chrootNames) break;
        written.add(target);
        return;
      case "fifo":
        await run("mkfifo", ["-m", "600", target]);
        break;
      case "char-device":
      case "block-device":
        if (opts.skipDevices) {
          opts.skipDevices(e);
          return;
        }
        // Unprivileged users cannot create device nodes; a rootless build just leaves them out (as rootless docker and
        // containerd in a user namespace do).
        if (!devices) return;
        await run("mknod", ["-m", "600", target, e.type === "char-device" ? "c" : "b", String(e.devmajor ?? 0), String(e.devminor ?? 0)]);
        break;
    }
    written.add(target);

    // chown first: it clears setuid/setgid, which chmod then restores.
    if (asRoot) await lchown(target, e.uid, e.gid);
    if (e.xattrs) await setXattrs(target, e.xattrs);
    if (e.type === "directory") {
      const st = fsSync.lstatSync(target);
      dirs.push({ path: target, mode: e.mode, mtime: e.mtime, dev: st.dev, ino: st.ino });
    } else if (e.type === "symlink") {
      await lutimes(target, e.mtime, e.mtime).catch(() => undefined);
    } else {
      await chmod(target, e.mode);
      await utimes(target, e.mtime, e.mtime);
    }
  }

  const { stream } = await decompressStream(input);
  const ex = tar.extract();
  const feeding = pipeline(stream, ex);
  feeding.catch(() => undefined);
  const onAbort = () => ex.destroy(new AbortError());
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal?.aborted) throw new AbortError();
    for await (const entry of ex) {
      if (signal?.aborted) throw new AbortError();
      const rs = entry as unknown as Readable;
      try {
        await apply(rs, entry.header as TarHeader);
      } finally {
        // Whatever was not consumed (skipped entries, errors) must be read before the next header.
        if (!rs.destroyed) await drain(rs).catch(() => undefined);
      }
    }
    await feeding;
    // Deepest first, so a read-only parent never blocks fixing up a child.
    for (const d of dirs.reverse()) setDirMeta(d);
  } catch (err) {
    if (!ex.destroyed) ex.destroy();
    stream.destroy();
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}
