// Deterministic layer tars: entries in Go's filepath.Walk order (as BuildKit writes them), all metadata taken from the entry (never the clock or
// the local user database), file bytes streamed from disk. The same entries always give the same bytes, so the same diff_id.
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { AbortError, ArchiveError } from "../errors.js";
import { readUpTo } from "../util/read-up-to.js";
import { END_OF_ARCHIVE, encodeHeader, needsPax, padding, writePlainHeader, type TarHeader } from "./tar-header.js";
import type { EntryType, LayerEntry } from "./types.js";

export interface WriteLayerTarOptions {
  signal?: AbortSignal;
  /**
   * `out` is done with a chunk once its write callback ran (a file writer, not a PassThrough that hands the chunk
   * on): the writer then fills that buffer again instead of allocating a new one per batch.
   */
  reuseChunks?: boolean;
}

// Largest uid/gid the header's octal fields hold as written (6 digits and a space, tar-stream's format); beyond it the
// field says 777777 and the id travels in a PAX record. (0o7777777 here wrote ids 262144–2097151 as 262143.)
const MAX_OCTAL_ID = 0o777777;

// File-type bits (S_IFMT) per entry type, kept in the header's mode as tar-stream's pack required (it replaced a
// falsy mode with 0644/0755); only the permission bits are written, exactly the entry's.
export const TYPE_BITS: Record<EntryType, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  hardlink: 0o100000,
  "char-device": 0o020000,
  "block-device": 0o060000,
  fifo: 0o010000,
};

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * Byte order (UTF-8) of `a[as..ae)` and `b[bs..be)`, without slicing or encoding: below the surrogates, UTF-16 code
 * units order as UTF-8 bytes do; only a difference at or above them is settled by encoding the two names.
 */
function compareSpan(a: string, as: number, ae: number, b: string, bs: number, be: number): number {
  const n = Math.min(ae - as, be - bs);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(as + i);
    const cb = b.charCodeAt(bs + i);
    if (ca === cb) continue;
    return ca < 0xd800 && cb < 0xd800 ? ca - cb : compareBytes(a.slice(as, ae), b.slice(bs, be));
  }
  return ae - as - (be - bs);
}

/** Where the name a component sorts by starts: a whiteout sorts where the name it deletes would (BuildKit's differs meet it there). */
function walkNameStart(p: string, start: number, end: number): number {
  return p.startsWith(".wh.", start) && !(end - start === 12 && p.startsWith(".wh..wh..opq", start)) ? start + 4 : start;
}

/**
 * Go's filepath.Walk order, which BuildKit's layers have: a directory, then its children by name (bytewise), each
 * child's subtree before the next sibling — so `d/x` precedes `d.txt`, unlike a bytewise sort of whole paths.
 * Component by component in place: a sort of 20,000 entries makes hundreds of thousands of comparisons.
 */
export function compareWalk(a: string, b: string): number {
  let ia = 0;
  let ib = 0;
  for (;;) {
    let ea = a.indexOf("/", ia);
    if (ea < 0) ea = a.length;
    let eb = b.indexOf("/", ib);
    if (eb < 0) eb = b.length;
    const c = compareSpan(a, walkNameStart(a, ia, ea), ea, b, walkNameStart(b, ib, eb), eb) || compareSpan(a, ia, ea, b, ib, eb);
    if (c !== 0) return c;
    const lastA = ea === a.length;
    const lastB = eb === b.length;
    if (lastA || lastB) return lastA === lastB ? 0 : lastA ? -1 : 1;
    ia = ea + 1;
    ib = eb + 1;
  }
}

/** A copy of `entries` in walk order (parents always precede their children); stable for equal paths. */
export function sortEntries(entries: Iterable<LayerEntry>): LayerEntry[] {
  return [...entries].sort((a, b) => compareWalk(a.path, b.path));
}

function checkPath(e: LayerEntry): void {
  if (e.path === "" || e.path.startsWith("/") || e.path.endsWith("/") || e.path.split("/").some((c) => c === "" || c === "." || c === ".."))
    throw new ArchiveError("BAD_ENTRY_PATH", `layer entry path ${JSON.stringify(e.path)} is not a clean relative path`);
}

function headerOf(e: LayerEntry): TarHeader {
  const bits = TYPE_BITS[e.type];
  const whiteout = e.path.slice(e.path.lastIndexOf("/") + 1).startsWith(".wh.");
  if (bits === undefined) throw new ArchiveError("BAD_ENTRY_TYPE", `layer entry ${e.path} has unknown type ${String(e.type)}`);
  const pax: Record<string, string> = {};
  const h: TarHeader = {
    name: e.type === "directory" ? `${e.path}/` : e.path,
    type: e.type,
    mode: bits | (e.mode & 0o7777),
    uid: e.uid,
    gid: e.gid,
    // Whole seconds: sub-second times would make the tar depend on filesystem timestamp precision.
    mtime: Math.max(0, Math.floor(e.mtime)),
    // BuildKit's writers (containerd's changeWriter, moby's tarAppender in Docker 20.10) name owners from the build
    // host's user database; only uid/gid 0 is "root" on every host, so other ids stay unnamed (never this machine's).
    // A whiteout is a header containerd's changeWriter builds by hand: no owner names.
    uname: e.uid === 0 && !whiteout ? "root" : "",
    gname: e.gid === 0 && !whiteout ? "root" : "",
    size: e.type === "file" ? (e.size ?? 0) : 0,
  };
  if (e.uid > MAX_OCTAL_ID) pax["uid"] = String(e.uid);
  if (e.gid > MAX_OCTAL_ID) pax["gid"] = String(e.gid);
  if (e.type === "symlink" || e.type === "hardlink") {
    if (e.linkname === undefined || e.linkname === "") throw new ArchiveError("BAD_ENTRY", `layer entry ${e.path} (${e.type}) has no link target`);
    h.linkname = e.linkname;
  }
  if (e.type === "char-device" || e.type === "block-device") {
    h.devmajor = e.devmajor ?? 0;
    h.devminor = e.devminor ?? 0;
  }
  if (e.xattrs) {
    // Sorted so the PAX record order (and so the digest) does not depend on how the caller built the object.
    for (const k of Object.keys(e.xattrs).sort(compareBytes)) pax[`SCHILY.xattr.${k}`] = e.xattrs[k] ?? "";
  }
  if (Object.keys(pax).length > 0) h.pax = pax;
  return h;
}

/**
 * Output gathered into writes of about this size: one write per small entry cost more than the bytes. A little more
 * than SMALL_FILE, so a file of up to 1 MiB and its header are read straight into one batch.
 */
const BATCH_BYTES = (1 << 20) + (4 << 10);

/**
 * Batches written to `out` and not yet done. One is written while the next fills: reading (and hashing) the files
 * overlaps with the output's own write instead of waiting for it.
 */
const MAX_IN_FLIGHT = 1;

/**
 * Gathers entry blocks into ~1 MiB writes to `out`, waiting while it is behind; a failure of `out` surfaces on the
 * next wait. Small files and headers are written straight into the batch (reserve/commit), so they cost no buffer of
 * their own. With `reuse`, a batch whose write is done is filled again: a fresh 1 MiB per batch lived (outside the
 * JS heap, so in RSS) until the next full collection.
 */
class BatchedOutput {
  private buf: Buffer = Buffer.allocUnsafe(BATCH_BYTES);
  private used = 0;
  private inFlight = 0;
  private readonly spare: Buffer[] = [];
  private wake: (() => void) | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly out: Writable,
    private readonly reuse: boolean,
  ) {
    // Also keeps an error of `out` (or our own destroy(err)) from being an unhandled 'error' event.
    out.on("error", (e: Error) => {
      this.failure ??= e;
      this.woken();
    });
    out.on("close", () => {
      this.failure ??= new ArchiveError("WRITE_ABORTED", "the layer output closed before the tar was written");
      this.woken();
    });
  }

  private woken(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Hands the batch to `out` and starts a new one (`out` holds the old one until its write is done). */
  private emit(): void {
    if (this.used === 0) return;
    const b = this.buf;
    this.inFlight++;
    this.out.write(b.subarray(0, this.used), (err) => {
      this.inFlight--;
      if (err) this.failure ??= err;
      else if (this.reuse) this.spare.push(b);
      this.woken();
    });
    this.buf = this.spare.pop() ?? Buffer.allocUnsafe(BATCH_BYTES);
    this.used = 0;
  }

  push(b: Buffer): void {
    if (b.length === 0) return;
    if (b.length > this.buf.length - this.used) this.emit();
    if (b.length > this.buf.length) {
      this.inFlight++;
      this.out.write(b, (err) => {
        this.inFlight--;
        if (err) this.failure ??= err;
        this.woken();
      });
      return;
    }
    b.copy(this.buf, this.used);
    this.used += b.length;
  }

  /** `n` free bytes at the end of the batch, to fill and commit(); undefined when `n` is more than a batch holds. */
  async reserve(n: number): Promise<{ buf: Buffer; offset: number } | undefined> {
    if (n > BATCH_BYTES) return undefined;
    if (n > this.buf.length - this.used) await this.flush();
    return { buf: this.buf, offset: this.used };
  }

  /** `n` free bytes at the end of the batch as it is (to fill and commit()), or undefined: no flush, no wait. */
  roomNow(n: number): { buf: Buffer; offset: number } | undefined {
    return n <= this.buf.length - this.used ? { buf: this.buf, offset: this.used } : undefined;
  }

  /** Like reserve(), without waiting: room for a header block in the batch, emitted first when it is full. */
  room(n: number): { buf: Buffer; offset: number } {
    if (n > this.buf.length - this.used) this.emit();
    return { buf: this.buf, offset: this.used };
  }

  /** Keeps `n` bytes written into the last reserve(). */
  commit(n: number): void {
    this.used += n;
  }

  get full(): boolean {
    return this.used >= BATCH_BYTES - 512 || this.inFlight > MAX_IN_FLIGHT;
  }

  async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    this.emit();
    while (this.inFlight > MAX_IN_FLIGHT && !this.failure) await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure) throw this.failure;
  }

  async end(): Promise<void> {
    await this.flush();
    this.out.end();
    await finished(this.out);
  }
}

function sizeChanged(source: string, expected: number, got: string): ArchiveError {
  return new ArchiveError("SIZE_CHANGED", `file ${source} changed size while writing the layer (expected ${expected} bytes, ${got})`, {
    hint: "a file in the build changed while its layer was being written",
  });
}

function unreadable(source: string, e: LayerEntry, err: unknown): ArchiveError {
  return new ArchiveError("SOURCE_UNREADABLE", `cannot read ${source} for layer entry ${e.path}: ${(err as Error).message}`, { cause: err });
}

/** Files up to this size are read in one synchronous call: thread-pool round trips per file dominated layers of many small files. */
const SMALL_FILE = 1 << 20;

/**
 * Opens an entry's source. A checked source (a build context file) is opened without following a symlink or
 * blocking on a FIFO put in its place, and must still be a regular file of the expected size.
 */
function openSource(source: string, e: LayerEntry, expected: number): number {
  const check = e.check;
  let fd: number;
  try {
    fd = check ? openSync(source, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK) : openSync(source, "r");
  } catch (err) {
    if (check) throw check.mismatch();
    throw unreadable(source, e, err);
  }
  if (check) {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size !== expected) {
      closeSync(fd);
      throw check.mismatch();
    }
  }
  return fd;
}

/**
 * A small file's entry: the bytes are read into `into` after the header's place (one byte more than expected is
 * asked for, so a grown file is noticed without reading it all), checked, and only then the header is put before
 * them: a missing or changed file leaves nothing half written. `pax`: the header blocks when it needs PAX records,
 * else the one plain block is written in place. Returns the bytes used.
 */
function readSmallEntry(source: string, e: LayerEntry, h: TarHeader, pax: Buffer | undefined, into: Buffer, offset: number): number {
  const expected = h.size;
  const headerLength = pax?.length ?? 512;
  const fd = openSource(source, e, expected);
  try {
    const at = offset + headerLength;
    let n: number;
    try {
      n = readUpTo(fd, into, expected + 1, at);
    } catch (err) {
      throw unreadable(source, e, err);
    }
    if (n !== expected) throw e.check ? e.check.mismatch() : sizeChanged(source, expected, n > expected ? "got more" : `got ${n}`);
    if (e.check && e.check.hasher.bytes(into.subarray(at, at + n)) !== e.check.content) throw e.check.mismatch();
    if (pax) pax.copy(into, offset);
    else writePlainHeader(h, into, offset);
    return headerLength + n;
  } finally {
    closeSync(fd);
  }
}

/**
 * A large file's bytes in chunks, straight into the output; the size (and a checked entry's hash) as for a small
 * file. Synchronous reads of 1 MiB each: the output's drain is what the writer waits for.
 */
async function writeLargeFile(sink: BatchedOutput, source: string, e: LayerEntry, expected: number, signal: AbortSignal | undefined): Promise<void> {
  const fd = openSource(source, e, expected);
  const h = e.check?.hasher.stream();
  try {
    let written = 0;
    for (;;) {
      if (signal?.aborted) throw new AbortError();
      // Read straight into the batch: no buffer of its own, no copy.
      const want = Math.min(BATCH_BYTES, expected - written + 1);
      const room = (await sink.reserve(want)) as { buf: Buffer; offset: number };
      let n: number;
      try {
        n = readSync(fd, room.buf, room.offset, want, null);
      } catch (err) {
        throw unreadable(source, e, err);
      }
      if (n === 0) break;
      written += n;
      if (written > expected) throw e.check ? e.check.mismatch() : sizeChanged(source, expected, "got more");
      h?.update(room.buf.subarray(room.offset, room.offset + n));
      sink.commit(n);
      if (sink.full) await sink.flush();
    }
    if (written !== expected) throw e.check ? e.check.mismatch() : sizeChanged(source, expected, `got ${written}`);
    // The bytes already in the output are discarded with it: the whole tar fails.
    if (h && e.check && h.digest() !== e.check.content) throw e.check.mismatch();
  } finally {
    closeSync(fd);
  }
}

/** An entry's header blocks into the batch: a plain one in place, PAX ones as their own buffer. */
function pushHeader(sink: BatchedOutput, h: TarHeader): void {
  if (needsPax(h)) return sink.push(encodeHeader(h));
  const room = sink.room(512);
  writePlainHeader(h, room.buf, room.offset);
  sink.commit(512);
}

/**
 * A file entry written at once, when it has no bytes or is small and fits in the batch; false (nothing written) when
 * it needs a flush first or is large. No await per small file: a suspended async frame per entry (its registers
 * included) was most of what a 20,000-file layer left for the old generation.
 */
function writeFileEntryNow(sink: BatchedOutput, h: TarHeader, e: LayerEntry): boolean {
  const expected = h.size;
  if (expected > 0 && !e.source) throw new ArchiveError("BAD_ENTRY", `layer entry ${e.path} has ${expected} bytes but no source file`);
  if (!e.source) {
    pushHeader(sink, h);
    return true;
  }
  if (expected > SMALL_FILE) return false;
  const pax = needsPax(h) ? encodeHeader(h) : undefined;
  const room = sink.roomNow((pax?.length ?? 512) + expected + 1);
  if (!room) return false;
  sink.commit(readSmallEntry(e.source, e, h, pax, room.buf, room.offset));
  sink.push(padding(expected));
  return true;
}

/** A file entry that writeFileEntryNow could not write: after a flush, almost a whole batch, or a large file. */
async function writeFileEntry(sink: BatchedOutput, h: TarHeader, e: LayerEntry, signal: AbortSignal | undefined): Promise<void> {
  const expected = h.size;
  const source = e.source as string;
  if (expected <= SMALL_FILE) {
    await sink.flush();
    if (writeFileEntryNow(sink, h, e)) return;
  }
  const pax = needsPax(h) ? encodeHeader(h) : undefined;
  if (expected <= SMALL_FILE) {
    // Almost a whole batch: read into a buffer of its own, the header still only after the bytes checked out.
    const own = Buffer.allocUnsafe((pax?.length ?? 512) + expected + 1);
    sink.push(own.subarray(0, readSmallEntry(source, e, h, pax, own, 0)));
  } else {
    // A failure after the header leaves the entry half written: writeLayerTar then destroys the output.
    if (pax) sink.push(pax);
    else pushHeader(sink, h);
    await writeLargeFile(sink, source, e, expected, signal);
  }
  sink.push(padding(expected));
}

/** Write `entries` as a deterministic tar to `out` (which is ended). Rejects, without finishing the tar, on any inconsistency. */
export async function writeLayerTar(entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>, out: Writable, opts: WriteLayerTarOptions = {}): Promise<void> {
  const { signal } = opts;
  const list: LayerEntry[] = [];
  // The entry list (metadata only) of one layer fits in memory; file contents never do and are streamed below.
  for await (const e of entries) list.push(e);
  const sorted = sortEntries(list);
  const sink = new BatchedOutput(out, opts.reuseChunks === true);
  try {
    for (const e of sorted) {
      if (signal?.aborted) throw new AbortError();
      checkPath(e);
      const h = headerOf(e);
      if (e.type !== "file") pushHeader(sink, h);
      else if (!writeFileEntryNow(sink, h, e)) await writeFileEntry(sink, h, e, signal);
      if (sink.full) await sink.flush();
    }
    sink.push(END_OF_ARCHIVE);
    await sink.end();
  } catch (err) {
    // Destroying the output stops it before a truncated tar could look valid (the caller discards it).
    if (!out.destroyed) out.destroy(err as Error);
    throw err;
  }
}
