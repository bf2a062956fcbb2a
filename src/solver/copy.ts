// COPY/ADD (and WORKDIR's mkdir) applied in place to a stage's working rootfs, returning the exact layer entries:
// every path written plus each parent directory, parents that already existed carrying their metadata from before the step.
import type { Stats } from "node:fs";
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  createReadStream,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  readlinkSync,
  symlinkSync,
  fchmodSync,
  fchownSync,
  futimesSync,
  openSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from "node:fs";
import { chmod, chown, copyFile, link, lstat, mkdir, mkdtemp, open, rm, unlink, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import pLimit from "p-limit";
import type { BuildContext } from "../context/build-context.js";
import { entryMeta, type DigestedEntry, type DigestLedger } from "../context/digest-ledger.js";
import { matchSources, missingGlobBase } from "../context/match-sources.js";
import { relativeMatcher, requireSome, selectSource, type CopySelection } from "../context/copy-selection.js";
import { walkTree, type WalkEntry } from "../context/walk.js";
import { BuildError, throwIfAborted } from "../errors.js";
import { lookupUser } from "../executor/user-lookup.js";
import { cleanPath } from "../frontend/dockerignore.js";
import { hasMeta } from "../frontend/path-match.js";
import type { SourceRange } from "../frontend/types.js";
import { decompressStream } from "../layer/compression.js";
import { extractLayer } from "../layer/extract.js";
import type { ContentCheck, LayerEntry } from "../layer/types.js";
import { compareWalk } from "../layer/tar-writer.js";
import { containerPathOf, resolveInRoot } from "../fs/rootfs-path.js";
import { parseChmod, type ChmodFn } from "./chmod.js";
import { lstatMaybe } from "../util/lstat-maybe.js";
import { readUpTo } from "../util/read-up-to.js";

/** Files up to this size are copied with synchronous calls. */
const SYNC_COPY_MAX = 1 << 20;

export type CopyFrom =
  /** `keyed`: the step's cache key digest of these sources; the copy then writes exactly what it covers, or fails with CONTEXT_CHANGED. */
  { kind: "context"; context: BuildContext; keyed?: DigestLedger } | { kind: "rootfs"; dir: string };

/**
 * An ADD source fetched from the network (solver/remote-source.ts): a downloaded file (its mode and mtime already as
 * the layer should have them, before --chmod) or a git checkout copied as a directory.
 */
export type RemoteItem = { kind: "file"; name: string; path: string; unpack: boolean } | { kind: "tree"; dir: string };

export interface CopyOptions {
  /** Target stage working dir (mutated). */
  rootfs: string;
  /** Source paths after variable expansion (heredoc sources excluded). */
  sources: string[];
  /** Destination after variable expansion. */
  dest: string;
  /** Container working directory, for a relative dest. */
  workdir: string;
  from: CopyFrom;
  chown?: string;
  chmod?: string;
  isAdd: boolean;
  /** ADD --unpack: false keeps local archives packed; true also unpacks remote ones (default: local only). */
  unpack?: boolean;
  /** ADD's remote sources, by the source text, already fetched. */
  remote?: ReadonlyMap<string, RemoteItem>;
  /** --exclude patterns and --parents (see context/copy-selection.ts); the context digest must use the same. */
  select?: CopySelection;
  /** COPY <<EOF: one file per heredoc, content already expanded. */
  heredocs?: { name: string; content: string }[];
  /** mtime (seconds) of created parent directories and heredoc files. */
  epoch: number;
  /** Clamp copied files' mtimes to `epoch` (they keep their source mtime otherwise, as Docker does). */
  clampMtime?: boolean;
  range?: SourceRange;
  signal?: AbortSignal;
  /** Regular files and bytes copied so far; called at most every PROGRESS_INTERVAL_MS, and once more at the end. */
  onProgress?: (p: { files: number; bytes: number }) => void;
}

/** How often a long copy reports its progress. */
const PROGRESS_INTERVAL_MS = 250;

/** Counts copied files and bytes, reporting the first file at once, then at most every interval, then the end. */
function progressCounter(report: ((p: { files: number; bytes: number }) => void) | undefined): { file(size: number): void; end(): void } {
  let files = 0;
  let bytes = 0;
  let last = -Infinity;
  let reported = 0;
  const send = () => {
    last = Date.now();
    reported = files;
    report?.({ files, bytes });
  };
  return {
    file(size) {
      files++;
      bytes += size;
      if (report && Date.now() - last >= PROGRESS_INTERVAL_MS) send();
    },
    end() {
      if (report && files !== reported) send();
    },
  };
}

export interface Owner {
  uid: number;
  gid: number;
}

/** How one tree of sources lands in the rootfs. */
interface Policy {
  /** --chown; undefined keeps `preserveOwner` semantics. */
  owner?: Owner;
  /** Keep source uid/gid (COPY --from, archives); else root (BuildKit resets context ownership). */
  preserveOwner: boolean;
  chmod?: ChmodFn;
  /**
   * Copies out of the build context: what the step's cache key was computed from. Every file is hashed as it is
   * copied (one read) and must match, so the layer holds exactly the bytes the key names.
   */
  ledger?: DigestLedger;
}

/** An item to copy: a resolved source with the name it was asked for. */
interface SourceItem {
  name: string;
  abs: string;
  stat: Stats;
  walk(): AsyncIterable<WalkEntry>;
  /** Prefix to strip from walk entries' `rel` to get paths relative to the item. */
  walkBase: string;
  /** A fetched ADD source: not from the context (no ledger), owned by root or --chown. */
  remote?: RemoteItem;
  /** Index of the source argument it came from (a glob gives several items of one source). */
  source?: number;
}

const FILE_COPY_CONCURRENCY = 32;
const URL_SOURCE = /^(?:[a-z][a-z0-9+.-]*:\/\/|git@)/i;

function errOpts(range: SourceRange | undefined, hint?: string): { range?: SourceRange; hint?: string } {
  const o: { range?: SourceRange; hint?: string } = {};
  if (range) o.range = range;
  if (hint) o.hint = hint;
  return o;
}

function contextChanged(rel: string, range: SourceRange | undefined): BuildError {
  return new BuildError(
    "CONTEXT_CHANGED",
    `file ${JSON.stringify(rel)} in the build context changed while it was being copied; run the build again`,
    errOpts(range, "something wrote into the build context during the build (an editor, a git checkout, a build tool); nothing was cached for this step"),
  );
}

/** What the cache key saw for context entry `rel`; throws CONTEXT_CHANGED when the entry is not that any more (or was never keyed). */
function keyedAs(ledger: DigestLedger, rel: string, stat: Stats, range: SourceRange | undefined): DigestedEntry {
  const e = ledger.take(rel);
  if (e === undefined || e === "changed" || e.meta !== entryMeta(stat)) throw contextChanged(rel, range);
  return e;
}

/** What a context file's layer entry must hash to: one small object per file, the error built only on a mismatch. */
class KeyedContent implements ContentCheck {
  constructor(
    readonly hasher: ContentCheck["hasher"],
    readonly content: string,
    private readonly rel: string,
    private readonly range: SourceRange | undefined,
  ) {}

  mismatch(): Error {
    return contextChanged(this.rel, this.range);
  }
}

/**
 * Is `file` a tar archive (plain or gzip/bzip2/xz/zstd-compressed)? By content, as Docker's IsArchivePath:
 * decompress and check that the first block is a valid tar header.
 */
export async function isTarArchive(file: string): Promise<boolean> {
  const input = createReadStream(file);
  let stream: Readable | undefined;
  try {
    stream = (await decompressStream(input)).stream;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      chunks.push(b);
      size += b.length;
      if (size >= 512) break;
    }
    if (size < 512) return false;
    return validTarHeader(Buffer.concat(chunks).subarray(0, 512));
  } catch {
    // A corrupt "compressed" file is just a file to copy.
    return false;
  } finally {
    stream?.destroy();
    input.destroy();
  }
}

function validTarHeader(h: Buffer): boolean {
  if (h.every((b) => b === 0)) return false;
  const field = h.subarray(148, 156).toString("latin1").replace(/\0.*$/s, "").trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
  return parseInt(field, 8) === sum;
}

/** The first copy of a multiply-linked source file in the current source: later names of its inode link to it. */
interface LinkSource {
  /** Where the first name was copied to. */
  target: string;
  /** Settles when that copy is on disk (undefined: already is). */
  done: Promise<void> | undefined;
  /** Context copies: the content hash the cache key saw for the first name (a later name must have seen the same). */
  content?: string;
}

function inodeKey(stat: Stats): string {
  return `${stat.dev}:${stat.ino}`;
}

/** Mutation state of one step: what was written, and the pre-step metadata of existing parents. */
class Session {
  readonly entries = new Map<string, LayerEntry>();
  /** Existing directories written into: entry as before the step, plus atime to restore. */
  readonly before = new Map<string, { entry: LayerEntry; atime: Date; mtime: Date }>();
  /** Directories this step created: empty before it, not setgid, so a new file there needs no lstat/chown. */
  private readonly fresh = new Set<string>();
  private readonly limit = pLimit(FILE_COPY_CONCURRENCY);
  private readonly processIds = { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 };
  private pending: Promise<void>[] = [];
  /**
   * Hard links of the source being copied, by source inode. BuildKit (fsutil's copier) keeps links within one
   * source argument, so this is reset per source: `COPY a b /d/` of two names of one inode gives two files.
   */
  private linkSources = new Map<string, LinkSource>();
  /** Targets of copied files whose source had more than one link: finish() turns names of one inode into link entries. */
  private readonly multiLinked = new Set<string>();
  /** Without writes: the source inode of each multiply-linked target (the disk has no copy to lstat). */
  private readonly linkedSources = new Map<string, Stats>();
  /** Without writes: planned directories that are not on disk, so nothing below them is either (no lstat needed). */
  private readonly absent = new Set<string>();
  /** copyKeyedFileTo's read buffer for small files. */
  private scratch: Buffer | undefined;

  constructor(
    readonly rootfs: string,
    readonly epoch: number,
    readonly clampMtime: boolean,
    /** Owner of implicitly created parent directories. */
    readonly parentOwner: Owner,
    readonly range?: SourceRange,
    readonly signal?: AbortSignal,
    /** Called when a regular file is fully copied (progress). */
    readonly copied: (size: number) => void = () => undefined,
    /**
     * False: the step is only planned against the rootfs as it stands, nothing is written, and file entries read
     * their bytes from the build context (checked against the key as the layer is written). Only for copies whose
     * targets the rootfs on disk decides alone: one source, no archive, heredoc or remote item (deferredCopy).
     */
    readonly writes: boolean = true,
  ) {}

  rel(abs: string): string {
    // A slice of the absolute path (which the entry map keeps anyway), not a new string per entry.
    if (abs.length > this.rootfs.length + 1 && abs.startsWith(this.rootfs) && abs[this.rootfs.length] === "/") return abs.slice(this.rootfs.length + 1);
    return path.relative(this.rootfs, abs).split(path.sep).join("/");
  }

  cpath(abs: string): string {
    return containerPathOf(this.rootfs, abs);
  }

  mtimeOf(stat: Stats): number {
    const m = Math.floor(stat.mtimeMs / 1000);
    return this.clampMtime && m > this.epoch ? this.epoch : m;
  }

  /** Set by applyCopy: the rootfs directory itself has setgid (new children would inherit its gid). */
  rootSetgid = true;

  /** A directory just created is "fresh" unless its parent on disk is setgid (then it inherits gid and setgid). */
  private markFresh(dir: string): void {
    const parent = path.dirname(dir);
    const parentSetgid =
      parent === this.rootfs ? this.rootSetgid : this.fresh.has(parent) ? false : ((this.before.get(parent)?.entry.mode ?? 0o2000) & 0o2000) !== 0;
    if (!parentSetgid) this.fresh.add(dir);
  }

  private known(dir: string): boolean {
    return this.entries.has(dir) || this.before.has(dir);
  }

  /** Makes every parent of `abs` exist, recording existing ones (before any write into them) and created ones. */
  async ensureParents(abs: string): Promise<void> {
    const chain: string[] = [];
    for (let d = path.dirname(abs); d !== this.rootfs && d.startsWith(this.rootfs + path.sep); d = path.dirname(d)) {
      if (this.known(d)) break;
      chain.push(d);
    }
    for (const dir of chain.reverse()) {
      const st = this.absent.has(path.dirname(dir)) ? undefined : await lstatMaybe(dir);
      if (st?.isDirectory()) {
        this.before.set(dir, {
          // Clamped like everything else under SOURCE_DATE_EPOCH: a RUN before may have left a real mtime on disk.
          entry: { path: this.rel(dir), type: "directory", mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: this.mtimeOf(st) },
          atime: st.atime,
          mtime: st.mtime,
        });
      } else if (st) {
        throw new BuildError("DEST_NOT_DIR", `cannot create ${this.cpath(abs)}: ${this.cpath(dir)} exists and is not a directory`, errOpts(this.range));
      } else {
        if (this.writes) {
          await mkdir(dir);
          this.markFresh(dir);
        } else this.absent.add(dir);
        this.entries.set(dir, { path: this.rel(dir), type: "directory", mode: 0o755, ...this.parentOwner, mtime: this.epoch });
      }
    }
  }

  /** Records an existing directory (and its parents) as written into, keeping its metadata. */
  async noteExistingDir(dir: string): Promise<void> {
    if (dir === this.rootfs) return;
    await this.ensureParents(path.join(dir, "x"));
  }

  /** Runs a file write with bounded concurrency; flush() waits for all. */
  schedule(task: () => Promise<void>): Promise<void> | undefined {
    this.pending.push(this.limit(task));
    if (this.pending.length >= 256) return this.flush();
    return undefined;
  }

  /** Starts a new source argument: hard links are kept only between names copied from the same one. */
  beginSource(): void {
    this.linkSources = new Map();
  }

  /**
   * For a regular file with more than one link: the earlier copy of the same inode in this source, if any (the
   * file is then linked to it, not copied). Otherwise notes `target` as that inode's first copy once `done` settles.
   */
  private firstLink(stat: Stats, target: string): LinkSource | undefined {
    if (stat.nlink < 2) return undefined;
    this.multiLinked.add(target);
    if (!this.writes) this.linkedSources.set(target, stat);
    const first = this.linkSources.get(inodeKey(stat));
    return first && first.target !== target ? first : undefined;
  }

  private noteFirstLink(stat: Stats, target: string, done: Promise<void> | undefined, content?: string): void {
    if (stat.nlink < 2) return;
    const src: LinkSource = { target, done };
    if (content !== undefined) src.content = content;
    this.linkSources.set(inodeKey(stat), src);
  }

  /** A further name of an inode already copied in this source: a hard link to that copy, sharing its owner, mode and time. */
  private linkTo(first: LinkSource, src: string, stat: Stats, target: string, policy: Policy, rel?: string): Promise<void> | undefined {
    if (policy.ledger && rel !== undefined) {
      const keyed = keyedAs(policy.ledger, rel, stat, this.range);
      // Both names were one inode when walked; the key must have read the same bytes through both.
      if (first.content !== undefined && keyed.content !== first.content) throw contextChanged(rel, this.range);
    }
    const firstEntry = this.entries.get(first.target);
    if (!firstEntry) throw new Error(`internal: hard link source ${first.target} has no entry`);
    this.entries.set(target, { ...firstEntry, path: this.rel(target), source: target });
    this.before.delete(target);
    if (!this.writes) {
      // Bytes from this name of the inode, in case it sorts first and carries them (markHardLinks).
      this.entries.set(target, { ...firstEntry, path: this.rel(target), source: src });
      this.refuseDirTarget(target);
      return undefined;
    }
    if (first.done === undefined) {
      this.clearFileTargetSync(target);
      linkSync(first.target, target);
      return undefined;
    }
    const done = first.done;
    return this.schedule(async () => {
      // The first copy's own failure is reported by its task; linking to nothing would only repeat it.
      await done.catch(() => undefined);
      await this.clearFileTarget(target);
      await link(first.target, target);
    });
  }

  async flush(): Promise<void> {
    const p = this.pending;
    this.pending = [];
    await Promise.all(p);
  }

  /** Removes whatever non-directory is at `target` so a file or link can take its place. */
  async clearFileTarget(target: string): Promise<void> {
    const st = await lstatMaybe(target);
    if (!st) return;
    if (st.isDirectory()) {
      throw new BuildError("DEST_IS_DIR", `cannot replace directory ${this.cpath(target)} with a file`, errOpts(this.range));
    }
    await unlink(target);
  }

  ownerFor(stat: Stats, policy: Policy): Owner {
    if (policy.owner) return policy.owner;
    return policy.preserveOwner ? { uid: stat.uid, gid: stat.gid } : { uid: 0, gid: 0 };
  }

  /** Owner, mode and time a copied file gets, and which syscalls a new file in a new directory can skip. */
  planFileCopy(stat: Stats, target: string, policy: Policy): { owner: Owner; perm: number; mode: number; mtime: number; isNew: boolean; needChown: boolean } {
    const owner = this.ownerFor(stat, policy);
    const perm = stat.mode & 0o7777;
    const mode = policy.chmod ? policy.chmod(perm, false) : perm;
    // Syscalls dominate large copies: skip the ones that cannot change anything for a new file in a new dir.
    const isNew = this.fresh.has(path.dirname(target)) && !this.entries.has(target);
    const needChown = !isNew || owner.uid !== this.processIds.uid || owner.gid !== this.processIds.gid;
    return { owner, perm, mode, mtime: this.mtimeOf(stat), isNew, needChown };
  }

  /** Copies a regular file, or links it to an earlier copy of its inode from the same source. Parents must exist. `rel`: its context path, for `policy.ledger`. */
  copyFileTo(src: string, stat: Stats, target: string, policy: Policy, rel?: string): Promise<void> | undefined {
    const first = this.firstLink(stat, target);
    if (first) return this.linkTo(first, src, stat, target, policy, rel);
    if (policy.ledger && rel !== undefined) return this.copyKeyedFileTo(src, stat, target, policy, policy.ledger, rel);
    const { owner, perm, mode, mtime, isNew, needChown } = this.planFileCopy(stat, target, policy);
    // copyFile gives the new file the source's mode; chown then clears setuid/setgid.
    const needChmod = mode !== perm || (needChown && (perm & 0o6000) !== 0);
    this.entries.set(target, { path: this.rel(target), type: "file", mode, ...owner, mtime, size: stat.size, source: target });
    this.before.delete(target);
    // Small files: synchronous syscalls (microseconds each) beat five thread-pool round trips per file by ~10x.
    if (stat.size <= SYNC_COPY_MAX) {
      if (!isNew) this.clearFileTargetSync(target);
      copyFileSync(src, target);
      // chown clears setuid/setgid, so it goes first.
      if (needChown) chownSync(target, owner.uid, owner.gid);
      if (needChmod) chmodSync(target, mode);
      utimesSync(target, mtime, mtime);
      this.noteFirstLink(stat, target, undefined);
      this.copied(stat.size);
      return undefined;
    }
    return this.scheduleFirst(stat, target, undefined, async () => {
      if (!isNew) await this.clearFileTarget(target);
      await copyFile(src, target);
      if (needChown) await chown(target, owner.uid, owner.gid);
      if (needChmod) await chmod(target, mode);
      await utimes(target, mtime, mtime);
      this.copied(stat.size);
    });
  }

  /**
   * A context file copy that hashes the bytes it writes (the very read that fills the layer) and fails with
   * CONTEXT_CHANGED unless they are what the step's cache key was computed from.
   */
  copyKeyedFileTo(src: string, stat: Stats, target: string, policy: Policy, ledger: DigestLedger, rel: string): Promise<void> | undefined {
    const hasher = ledger.hasher;
    const keyed = keyedAs(ledger, rel, stat, this.range);
    const { owner, mode, mtime, isNew, needChown } = this.planFileCopy(stat, target, policy);
    if (!this.writes) {
      // The layer reads the context file itself, and checks there that it is what the key hashed. The entry is
      // made whole at once: 20,000 of them live until the layer is written.
      const check = new KeyedContent(hasher, keyed.content, rel, this.range);
      const { uid, gid } = owner;
      this.entries.set(target, { path: this.rel(target), type: "file", mode, uid, gid, mtime, size: stat.size, source: src, check });
      this.before.delete(target);
      this.refuseDirTarget(target);
      this.noteFirstLink(stat, target, undefined, keyed.content);
      this.copied(stat.size);
      return undefined;
    }
    const entry: LayerEntry = { path: this.rel(target), type: "file", mode, ...owner, mtime, size: stat.size, source: target };
    this.entries.set(target, entry);
    this.before.delete(target);
    // Created 0600 ("wx": never through something already there); chown (which clears setuid/setgid) before chmod.
    if (stat.size <= SYNC_COPY_MAX) {
      if (!isNew) this.clearFileTargetSync(target);
      // Into one buffer per step, not a new one per file (a 1 MiB allocation each cost more than its read). A file
      // that grew past the buffer is read only in part, and so hashes differently.
      this.scratch ??= Buffer.allocUnsafe(SYNC_COPY_MAX + 1);
      const from = openSync(src, "r");
      let n: number;
      try {
        n = readUpTo(from, this.scratch, this.scratch.length);
      } finally {
        closeSync(from);
      }
      const data = this.scratch.subarray(0, n);
      if (hasher.bytes(data) !== keyed.content) throw contextChanged(rel, this.range);
      entry.size = data.length;
      // Metadata through the open descriptor: no path lookups (syscalls dominate copies of many small files).
      const fd = openSync(target, "wx", 0o600);
      try {
        for (let off = 0; off < data.length;) off += writeSync(fd, data, off);
        if (needChown) fchownSync(fd, owner.uid, owner.gid);
        fchmodSync(fd, mode);
        futimesSync(fd, mtime, mtime);
      } finally {
        closeSync(fd);
      }
      this.noteFirstLink(stat, target, undefined, keyed.content);
      this.copied(data.length);
      return undefined;
    }
    return this.scheduleFirst(stat, target, keyed.content, async () => {
      if (!isNew) await this.clearFileTarget(target);
      const h = hasher.stream();
      let size = 0;
      const out = await open(target, "wx", 0o600);
      try {
        for await (const chunk of createReadStream(src, { highWaterMark: SYNC_COPY_MAX })) {
          throwIfAborted(this.signal);
          const b = chunk as Buffer;
          h.update(b);
          size += b.length;
          for (let off = 0; off < b.length;) off += (await out.write(b, off)).bytesWritten;
        }
      } finally {
        await out.close();
      }
      if (h.digest() !== keyed.content) throw contextChanged(rel, this.range);
      entry.size = size;
      if (needChown) await chown(target, owner.uid, owner.gid);
      await chmod(target, mode);
      await utimes(target, mtime, mtime);
      this.copied(size);
    });
  }

  /** schedule() for a file copy that later names of its inode may link to once it is done. */
  private scheduleFirst(stat: Stats, target: string, content: string | undefined, task: () => Promise<void>): Promise<void> | undefined {
    if (stat.nlink < 2) return this.schedule(task);
    const done = this.limit(task);
    this.pending.push(done);
    this.noteFirstLink(stat, target, done, content);
    if (this.pending.length >= 256) return this.flush();
    return undefined;
  }

  /** Without writes: what clearFileTargetSync would refuse (a directory where a file goes), without removing anything. */
  private refuseDirTarget(target: string): void {
    if (this.absent.has(path.dirname(target))) return;
    if (lstatSync(target, { throwIfNoEntry: false })?.isDirectory())
      throw new BuildError("DEST_IS_DIR", `cannot replace directory ${this.cpath(target)} with a file`, errOpts(this.range));
  }

  clearFileTargetSync(target: string): void {
    let st: Stats;
    try {
      st = lstatSync(target);
    } catch {
      return;
    }
    if (st.isDirectory()) throw new BuildError("DEST_IS_DIR", `cannot replace directory ${this.cpath(target)} with a file`, errOpts(this.range));
    unlinkSync(target);
  }

  async copySymlinkTo(src: string, stat: Stats, target: string, policy: Policy, rel?: string): Promise<void> {
    const owner = this.ownerFor(stat, policy);
    const mtime = this.mtimeOf(stat);
    const linkname = readlinkSync(src);
    if (policy.ledger && rel !== undefined && keyedAs(policy.ledger, rel, stat, this.range).content !== linkname) throw contextChanged(rel, this.range);
    this.entries.set(target, { path: this.rel(target), type: "symlink", mode: 0o777, ...owner, mtime, linkname });
    this.before.delete(target);
    if (!this.writes) return this.refuseDirTarget(target);
    this.clearFileTargetSync(target);
    symlinkSync(linkname, target);
    lchownSync(target, owner.uid, owner.gid);
    lutimesSync(target, mtime, mtime);
  }

  async writeHeredoc(target: string, content: string, policy: Policy): Promise<void> {
    await this.ensureParents(target);
    await this.clearFileTarget(target);
    const owner = policy.owner ?? { uid: 0, gid: 0 };
    const mode = policy.chmod ? policy.chmod(0o644, false) : 0o644;
    await writeFile(target, content);
    await chown(target, owner.uid, owner.gid);
    await chmod(target, mode);
    await utimes(target, this.epoch, this.epoch);
    this.entries.set(target, {
      path: this.rel(target),
      type: "file",
      mode,
      ...owner,
      mtime: this.epoch,
      size: Buffer.byteLength(content),
      source: target,
    });
    this.before.delete(target);
  }

  /**
   * Prepares directory `target` for a source directory. Returns where its children go.
   * top: the COPY destination itself keeps its metadata when it exists, and when it is created gets BuildKit's
   * 0755 (or --chmod, which BuildKit applies to it since fsutil#228), owned by --chown or root — never the source
   * dir's mode or owner; nested directories always take the source's metadata.
   */
  async enterDir(stat: Stats, target: string, top: boolean, policy: Policy, rel?: string): Promise<string> {
    if (policy.ledger && rel !== undefined) keyedAs(policy.ledger, rel, stat, this.range);
    const st = this.absent.has(path.dirname(target)) ? undefined : await lstatMaybe(target);
    if (st?.isDirectory() && top) {
      await this.noteExistingDir(target);
      return target;
    }
    if (st?.isSymbolicLink() && !top) {
      // A link to a directory in the rootfs (e.g. /lib -> usr/lib on merged-/usr images) is written through, chroot-style.
      const resolved = await resolveInRoot(this.rootfs, this.cpath(target));
      if ((await lstatMaybe(resolved))?.isDirectory()) {
        await this.noteExistingDir(resolved);
        return resolved;
      }
    }
    if (st && !st.isDirectory()) {
      throw new BuildError("DEST_NOT_DIR", `cannot copy a directory to non-directory ${this.cpath(target)}`, errOpts(this.range));
    }
    if (!st) {
      await this.ensureParents(target);
      if (this.writes) {
        await mkdir(target);
        this.markFresh(target);
      } else this.absent.add(target);
    }
    const owner = top ? (policy.owner ?? { uid: 0, gid: 0 }) : this.ownerFor(stat, policy);
    const perm = stat.mode & 0o7777;
    const base = top ? 0o755 : perm;
    const mode = policy.chmod ? policy.chmod(base, true) : base;
    this.entries.set(target, { path: this.rel(target), type: "directory", mode, ...owner, mtime: this.mtimeOf(stat) });
    this.before.delete(target);
    return target;
  }

  /** Copies the contents of a source directory into `target`. */
  async copyTree(item: SourceItem, target: string, policy: Policy): Promise<void> {
    const top = await this.enterDir(item.stat, target, true, policy, item.walkBase);
    const dirs = new Map<string, string>([["", top]]);
    const strip = item.walkBase === "" || item.walkBase === "." ? 0 : item.walkBase.length + 1;
    for await (const e of item.walk()) {
      throwIfAborted(this.signal);
      const rel = e.rel.slice(strip);
      const slash = rel.lastIndexOf("/");
      const parent = dirs.get(slash < 0 ? "" : rel.slice(0, slash));
      // A parent that was skipped (unsupported type) leaves its children nowhere to go.
      if (parent === undefined) continue;
      const t = path.join(parent, slash < 0 ? rel : rel.slice(slash + 1));
      if (e.stat.isDirectory()) {
        // Pending writes may target this path; settle them before inspecting it.
        await this.flush();
        dirs.set(rel, await this.enterDir(e.stat, t, false, policy, e.rel));
      } else if (e.stat.isFile()) {
        await this.copyFileTo(e.abs, e.stat, t, policy, e.rel);
      } else if (e.stat.isSymbolicLink()) {
        await this.copySymlinkTo(e.abs, e.stat, t, policy, e.rel);
      } else if (policy.ledger) {
        keyedAs(policy.ledger, e.rel, e.stat, this.range);
      }
      // Sockets, fifos and device nodes cannot come from a context and are rare in stages: skipped (but keyed).
    }
    await this.flush();
  }

  /**
   * Names of one inode written by this step become one file entry (the walk-first path, which the tar writes
   * first) and hard-link entries to it (typeflag '1', size 0), as BuildKit's tar writers do. Grouped by the inode
   * on disk, so a name overwritten later in the step is not taken for a link.
   */
  private markHardLinks(): void {
    const groups = new Map<string, { size: number; entries: LayerEntry[] }>();
    for (const abs of this.multiLinked) {
      const e = this.entries.get(abs);
      if (e?.type !== "file") continue;
      const st = this.writes ? lstatSync(abs) : (this.linkedSources.get(abs) as Stats);
      if (!st.isFile() || st.nlink < 2) continue;
      const key = inodeKey(st);
      const group = groups.get(key) ?? { size: st.size, entries: [] };
      group.entries.push(e);
      groups.set(key, group);
    }
    for (const { size, entries: group } of groups.values()) {
      if (group.length < 2) continue;
      group.sort((a, b) => compareWalk(a.path, b.path));
      const [head, ...rest] = group as [LayerEntry, ...LayerEntry[]];
      // The bytes on disk are the checked copy's: every name of the inode shows them.
      head.size = size;
      for (const e of rest) {
        e.type = "hardlink";
        e.linkname = head.path;
        delete e.size;
        delete e.source;
        delete e.check;
      }
    }
  }

  /** Applies directory metadata after all writes (children bump mtimes; a 0555 dir would block them), deepest first. */
  async finish(): Promise<LayerEntry[]> {
    await this.flush();
    const byDepth = (a: string, b: string) => b.length - a.length;
    for (const abs of this.writes ? [...this.entries.keys()].sort(byDepth) : []) {
      const e = this.entries.get(abs) as LayerEntry;
      if (e.type !== "directory") continue;
      await chown(abs, e.uid, e.gid);
      await chmod(abs, e.mode);
      await utimes(abs, e.mtime, e.mtime);
    }
    for (const abs of this.writes ? [...this.before.keys()].sort(byDepth) : []) {
      const b = this.before.get(abs) as { atime: Date; mtime: Date };
      await utimes(abs, b.atime, b.mtime);
    }
    this.markHardLinks();
    const out = [...this.entries.values(), ...[...this.before.values()].map((b) => b.entry)];
    out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return out;
  }
}

function destIsDirSyntax(dest: string): boolean {
  return dest.endsWith("/") || dest === "." || dest === ".." || dest.endsWith("/.") || dest.endsWith("/..");
}

async function resolveItems(opts: CopyOptions): Promise<{ items: SourceItem[]; preserveOwner: boolean }> {
  const items: SourceItem[] = [];
  const from = opts.from;
  for (const [index, src] of opts.sources.entries()) {
    throwIfAborted(opts.signal);
    const remote = opts.isAdd ? opts.remote?.get(src) : undefined;
    if (remote) {
      const abs = remote.kind === "file" ? remote.path : remote.dir;
      const name = remote.kind === "file" ? remote.name : path.basename(abs);
      items.push({
        name,
        abs,
        stat: await lstat(abs),
        walkBase: "",
        walk: () => walkTree(abs, "", opts.signal ? { signal: opts.signal } : {}),
        remote,
        source: index,
      });
      continue;
    }
    if (URL_SOURCE.test(src)) {
      if (opts.isAdd) {
        throw new BuildError(
          "BAD_SOURCE",
          `ADD cannot fetch ${src}: remote sources are http(s) URLs and git repositories`,
          errOpts(opts.range, "download the file in a RUN step or beforehand into the build context"),
        );
      }
      throw new BuildError("BAD_SOURCE", `COPY cannot read from a URL: ${src}`, errOpts(opts.range, "use ADD for remote sources"));
    }
    const sel = selectSource(src, opts.select);
    if (from.kind === "context") {
      const ctx = from.context;
      for (const m of await ctx.resolveSources(sel.source, opts.range)) {
        const walk = () => requireSome(ctx.walk(m.resolved, opts.signal, undefined, sel.filter), src, sel.required, "the build context", opts.range);
        items.push({ name: path.posix.basename(m.path), abs: m.abs, stat: m.stat, walkBase: m.resolved, walk, source: index });
      }
    } else {
      const root = path.resolve(from.dir);
      // Stage sources are container paths: relative ones are taken from `/`, and `..` cannot leave the rootfs.
      const rel = cleanPath("/" + sel.source).slice(1) || ".";
      const matches = await matchSources(root, rel);
      if (matches.length === 0) {
        // As from the context: a pattern may match nothing, but the directory it is matched in must exist.
        const base = hasMeta(rel) ? await missingGlobBase(root, rel) : rel;
        if (base === undefined) continue;
        const what = base === rel ? JSON.stringify(src) : `${JSON.stringify("/" + base)} (of the pattern ${JSON.stringify(src)})`;
        throw new BuildError("SOURCE_NOT_FOUND", `${what} not found in the source stage`, errOpts(opts.range));
      }
      for (const m of matches) {
        items.push({
          name: path.posix.basename(m.path === "." ? "/" : m.path) || "/",
          abs: m.abs,
          stat: m.stat,
          walkBase: m.resolved,
          source: index,
          walk: () =>
            requireSome(
              walkTree(root, m.resolved, {
                ...(opts.signal ? { signal: opts.signal } : {}),
                ...(sel.filter ? { ignore: relativeMatcher(m.resolved, sel.filter) } : {}),
              }),
              src,
              sel.required,
              "the source stage",
              opts.range,
            ),
        });
      }
    }
  }
  return { items, preserveOwner: from.kind === "rootfs" };
}

/** Applies a COPY/ADD to `opts.rootfs` and returns the layer's entries, sorted by path. */
export async function applyCopy(opts: CopyOptions): Promise<LayerEntry[]> {
  return (await copyInto(opts, true)) as LayerEntry[];
}

/**
 * The layer entries of a COPY from the build context, planned against `opts.rootfs` without writing into it: file
 * entries read their bytes from the context, and writing the layer checks them against the cache key
 * (CONTEXT_CHANGED otherwise). For a step whose rootfs nothing reads before the layer is applied to it again (the
 * last filesystem step of a stage): the context's files are then written once, into the layer, not also into a
 * directory. Undefined, with nothing done, for a copy the rootfs alone does not decide: several sources, ADD, heredocs.
 */
export async function deferredCopy(opts: CopyOptions): Promise<LayerEntry[] | undefined> {
  if (opts.isAdd || opts.from.kind !== "context" || !opts.from.keyed || (opts.heredocs?.length ?? 0) > 0 || opts.sources.length !== 1) return undefined;
  return copyInto(opts, false);
}

async function copyInto(opts: CopyOptions, writes: boolean): Promise<LayerEntry[] | undefined> {
  const rootfs = path.resolve(opts.rootfs);
  const heredocs = opts.heredocs ?? [];
  const owner = opts.chown ? await lookupUser(rootfs, opts.chown, { numericGidDefault: "same", lenient: true }) : undefined;
  const chmodFn = opts.chmod ? parseChmod(opts.chmod) : undefined;
  const ownerIds = owner ? { uid: owner.uid, gid: owner.gid } : undefined;
  // Resolve every source before touching the rootfs: a missing source must not leave a half-applied step.
  const { items, preserveOwner } = await resolveItems(opts);
  // One item (a glob may give several): later items could write through what earlier ones made, which only the disk knows.
  if (!writes && (items.length !== 1 || items[0]?.remote || !(items[0]?.stat.isDirectory() || items[0]?.stat.isFile()))) return undefined;
  if (opts.sources.length + heredocs.length === 0) {
    throw new BuildError("SOURCE_NOT_FOUND", "no source files were specified", errOpts(opts.range));
  }

  const destContainer = path.posix.resolve("/", opts.workdir || "/", opts.dest);
  const destAbs = await resolveInRoot(rootfs, destContainer);
  // BuildKit copies the sources one after another onto dest, with no check of their number (moby/moby#47064): a
  // file goes inside dest when dest ends in `/` or is a directory by then, else it becomes dest (a later file replaces
  // it); a directory's contents merge into dest (a file there is an error).
  const fileTarget = async (name: string): Promise<string> =>
    destIsDirSyntax(opts.dest) || (await lstatMaybe(destAbs))?.isDirectory() === true ? path.join(destAbs, name) : destAbs;

  const progress = progressCounter(opts.onProgress);
  const session = new Session(
    rootfs,
    opts.epoch,
    opts.clampMtime ?? false,
    ownerIds ?? { uid: 0, gid: 0 },
    opts.range,
    opts.signal,
    (n) => progress.file(n),
    writes,
  );
  session.rootSetgid = ((await lstat(rootfs)).mode & 0o2000) !== 0;
  const policy: Policy = { preserveOwner };
  if (ownerIds) policy.owner = ownerIds;
  if (chmodFn) policy.chmod = chmodFn;
  // Remote sources: never from the context, owned by root (or --chown) as BuildKit copies them.
  const remotePolicy: Policy = { ...policy, preserveOwner: false };
  // Context copies are checked against what their cache key read.
  if (opts.from.kind === "context" && opts.from.keyed) policy.ledger = opts.from.keyed;

  let lastSource: number | undefined = -1;
  for (const item of items) {
    throwIfAborted(opts.signal);
    // As BuildKit's copier: hard links are kept among the names one source argument copies (a glob's matches included).
    if (item.source !== lastSource) session.beginSource();
    lastSource = item.source;
    const itemPolicy = item.remote ? remotePolicy : policy;
    // BuildKit unpacks local archives unless --unpack=false, remote ones only with --unpack=true.
    const unpack = item.remote ? item.remote.kind === "file" && item.remote.unpack : opts.isAdd && opts.unpack !== false;
    if (item.stat.isDirectory()) {
      await session.copyTree(item, destAbs, itemPolicy);
    } else if (item.stat.isFile()) {
      if (unpack && (await isTarArchive(item.abs))) {
        await addArchive(session, item, destAbs, itemPolicy, opts.signal);
        continue;
      }
      const target = await fileTarget(item.name);
      await session.ensureParents(target);
      await session.copyFileTo(item.abs, item.stat, target, itemPolicy, item.remote ? undefined : item.walkBase);
      await session.flush();
    } else {
      throw new BuildError("UNSUPPORTED", `cannot copy ${JSON.stringify(item.name)}: not a regular file, directory or symlink`, errOpts(opts.range));
    }
  }
  for (const h of heredocs) {
    const target = await fileTarget(h.name);
    await session.writeHeredoc(target, h.content, policy);
  }
  await session.flush();
  progress.end();
  // A file the key covered but the copy never met was deleted meanwhile.
  const gone = policy.ledger?.untaken()[0];
  if (gone !== undefined) throw contextChanged(gone, opts.range);
  return session.finish();
}

/**
 * ADD of a local tar: extracted (safely) into a scratch dir, then merged into dest like a directory source.
 * As Docker, the archive's own ownership and modes are kept (--chown/--chmod do not apply to its entries).
 */
async function addArchive(session: Session, source: SourceItem, destAbs: string, policy: Policy, signal?: AbortSignal): Promise<void> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), "tsbuild-add-"));
  const unpacked = path.join(scratch, "u");
  try {
    let archive = source.abs;
    if (policy.ledger) {
      // Unpack a checked copy: the archive must be the bytes the cache key hashed, also if it is rewritten meanwhile.
      const check = new Session(scratch, session.epoch, false, { uid: 0, gid: 0 }, session.range, signal);
      archive = path.join(scratch, "archive");
      await check.copyFileTo(source.abs, source.stat, archive, { preserveOwner: true, ledger: policy.ledger }, source.walkBase);
      await check.flush();
    }
    await mkdir(unpacked);
    // Member names with `../` or a leading `/` land inside dest, as BuildKit's chrooted untar puts them.
    await extractLayer(createReadStream(archive), unpacked, { chrootNames: true, ...(signal ? { signal } : {}) });
    // The destination directory of an archive is created like any implicit parent (0755, epoch), not from the scratch dir.
    if (!(await lstatMaybe(destAbs))) await session.ensureParents(path.join(destAbs, "x"));
    const item: SourceItem = {
      name: path.basename(source.abs),
      abs: unpacked,
      stat: await lstat(unpacked),
      walkBase: "",
      walk: () => walkTree(unpacked, "", signal ? { signal } : {}),
    };
    await session.copyTree(item, destAbs, { preserveOwner: true });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * WORKDIR: creates `containerPath` (and missing parents) as directories owned by `owner` (default root), mode 0755.
 * Returns the created directories plus their existing parents; [] when it already existed.
 */
export async function ensureDir(rootfs: string, containerPath: string, owner: Owner | undefined, epoch: number): Promise<LayerEntry[]> {
  const root = path.resolve(rootfs);
  const target = await resolveInRoot(root, path.posix.resolve("/", containerPath));
  const st = await lstatMaybe(target);
  if (st?.isDirectory()) return [];
  if (st) throw new BuildError("DEST_NOT_DIR", `cannot create directory ${containerPath}: a file is in the way`);
  const session = new Session(root, epoch, false, owner ?? { uid: 0, gid: 0 });
  session.rootSetgid = ((await lstat(root)).mode & 0o2000) !== 0;
  await session.ensureParents(path.join(target, "x"));
  return session.finish();
}
