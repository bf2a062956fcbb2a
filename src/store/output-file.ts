// Files the user names as outputs (--metadata-file, save -o, -o type=oci|docker tar, the Docker config file).
// What is there decides how it is written, as docker does: a device, FIFO or /dev/stdout is written through; a
// regular file (or one a symlink points to) is replaced atomically (temp beside it, fsync, rename) keeping its mode
// and the link; a directory is a clear error. Nothing is ever renamed over a device node or a symlink.
import { close as closeCb, constants, fsync as fsyncCb, open as openCb, write as writeCb, type Stats } from "node:fs";
import { chmod, chown, lstat, mkdir, readlink, realpath, rename, rm, stat } from "node:fs/promises";
import { promisify } from "node:util";
import { basename, dirname, isAbsolute, resolve } from "node:path";
import { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { UsageError } from "../errors.js";
import { fsyncDir, tempPath } from "./atomic-write.js";
import { describeFsError, errnoCode } from "./fs-error.js";

export interface OutputFile {
  /** Write the content here; it reaches `path` (for replaced files) only when commit() resolves. */
  readonly stream: Writable;
  /** The file that receives the bytes: the path given, or the regular file a symlink there points to. */
  readonly target: string;
  /** End the stream (if not ended yet), flush, and put the file in place. Errors name the path. */
  commit(): Promise<void>;
  /** Drop what was written (a replaced file stays as it was); safe to call after a failure or twice. */
  abort(): Promise<void>;
}

export interface OutputFileOptions {
  /** Mode of a newly created file (before umask); default 0o644. A replaced file keeps its own mode. */
  mode?: number;
  /** How messages name the path: a flag ("--metadata-file") or a description; default "output file". */
  what?: string;
  /** Give a replaced file `mode` too instead of keeping its own (credentials: never readable by others). */
  forceMode?: boolean;
  /** Write into this stream instead (`-o -`: standard output); `path` then only names it in messages. Never ended. */
  stream?: Writable;
}

/** Where the bytes go. */
type Plan =
  /** Not a regular file (device, FIFO, /dev/stdout): open it for writing and write through it. */
  | { kind: "through"; path: string; flags: number; fd?: number }
  /** A regular file, or nothing yet: temp file beside `target`, renamed over it. */
  | { kind: "replace"; target: string; existing?: Stats };

const MAX_LINKS = 40;

// Numeric descriptors, not FileHandles: a FileHandle's write stream with autoClose: false keeps the handle
// referenced, and FileHandle.close() then never settles.
const openFd = promisify(openCb);
const fsyncFd = promisify(fsyncCb);
const closeFd = promisify(closeCb);
const writeFd = (fd: number, buf: Buffer, off: number, len: number, pos: number | null): Promise<number> =>
  new Promise((resolve, reject) => writeCb(fd, buf, off, len, pos, (e, n) => (e ? reject(e) : resolve(n))));

/** Does following `path`'s symlinks lexically pass through /proc or /dev/fd (/dev/stdout → /proc/self/fd/1)? */
async function linkChain(path: string): Promise<{ final: string; viaFd: boolean; fd?: number }> {
  let p = path;
  let viaFd = false;
  let fd: number | undefined;
  for (let i = 0; i < MAX_LINKS; i++) {
    if (p.startsWith("/proc/") || p.startsWith("/dev/fd/")) viaFd = true;
    const own = new RegExp(`^/(?:proc/(?:self|${process.pid})/fd|dev/fd)/(\\d+)$`).exec(p);
    if (own) fd = Number(own[1]);
    let st: Stats;
    try {
      st = await lstat(p);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return { final: p, viaFd, ...(fd !== undefined ? { fd } : {}) };
      throw e;
    }
    if (!st.isSymbolicLink()) return { final: p, viaFd, ...(fd !== undefined ? { fd } : {}) };
    const to = await readlink(p);
    p = isAbsolute(to) ? to : resolve(dirname(p), to);
  }
  const e: NodeJS.ErrnoException = new Error(`too many symbolic links: ${path}`);
  e.code = "ELOOP";
  throw e;
}

async function plan(path: string, what: string): Promise<Plan> {
  let st: Stats | undefined;
  try {
    st = await stat(path);
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") throw e;
  }
  if (st?.isDirectory()) {
    throw new UsageError("PATH_IS_DIRECTORY", `${what} ${path}: is a directory; give a file name`, {
      hint: `to write into that directory, add a file name: ${resolve(path, "NAME")}`,
    });
  }
  const chain = await linkChain(path);
  if (st === undefined) {
    // Nothing there, or a dangling symlink: create the file the link names, keeping the link.
    return { kind: "replace", target: chain.final };
  }
  const fd = chain.fd !== undefined ? { fd: chain.fd } : {};
  if (!st.isFile()) return { kind: "through", path, flags: constants.O_WRONLY, ...fd };
  // /dev/stdout redirected to a file: write through the descriptor, replacing would leave the shell's fd behind.
  if (chain.viaFd) return { kind: "through", path, flags: constants.O_WRONLY | constants.O_TRUNC, ...fd };
  return { kind: "replace", target: await realpath(path), existing: st };
}

/** Throws ENOTDIR when the nearest existing ancestor of `dir` (or `dir` itself) is not a directory. */
async function checkAncestors(dir: string): Promise<void> {
  for (let d = dir; ; d = dirname(d)) {
    let st: Stats | undefined;
    try {
      st = await stat(d);
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw e;
    }
    if (st) {
      if (!st.isDirectory()) throw Object.assign(new Error(`not a directory: ${d}`), { code: "ENOTDIR" });
      return;
    }
    if (dirname(d) === d) return;
  }
}

function nameTooLong(path: string): boolean {
  return Buffer.byteLength(basename(path)) > 255 || Buffer.byteLength(path) > 4095;
}
const tooLong = () => Object.assign(new Error("name too long"), { code: "ENAMETOOLONG" });

/**
 * Check that `path` can be an output file without creating anything: throws the error openOutputFile would throw
 * for a directory, a parent that is a file, a name that is too long. For flags, before a long build runs.
 */
export async function checkOutputFile(path: string, opts: OutputFileOptions = {}): Promise<void> {
  const what = opts.what ?? "output file";
  try {
    if (nameTooLong(path)) throw tooLong();
    const p = await plan(path, what);
    if (p.kind === "replace") {
      if (nameTooLong(p.target)) throw tooLong();
      await checkAncestors(dirname(p.target));
    }
  } catch (e) {
    throw describeFsError(e, path, what);
  }
}

/** The same for an output directory: it must be a directory or not exist yet below a directory. */
export async function checkOutputDir(path: string, opts: Pick<OutputFileOptions, "what"> = {}): Promise<void> {
  const what = opts.what ?? "output directory";
  try {
    if (nameTooLong(path)) throw tooLong();
    const st = await stat(path).catch((e: unknown) => (errnoCode(e) === "ENOENT" ? undefined : Promise.reject(e)));
    if (st && !st.isDirectory())
      throw new UsageError("PATH_NOT_DIRECTORY", `${what} ${path}: exists and is not a directory`, { hint: "give a directory (it is created when missing)" });
    if (!st) await checkAncestors(dirname(path));
  } catch (e) {
    throw describeFsError(e, path, what);
  }
}

/** Open `path` for writing as described at the top of this module. Errors name `opts.what` and the path. */
export async function openOutputFile(path: string, opts: OutputFileOptions = {}): Promise<OutputFile> {
  const what = opts.what ?? "output file";
  const fail = (e: unknown) => describeFsError(e, path, what);
  if (opts.stream) return streamOutput(opts.stream, path, fail);
  let p: Plan;
  try {
    p = await plan(path, what);
  } catch (e) {
    throw fail(e);
  }
  if (p.kind === "through") {
    let h: number;
    try {
      h = await openFd(p.path, p.flags);
    } catch (e) {
      // A socket cannot be opened (ENXIO): when it is one of our own descriptors (/dev/stdout with stdout a
      // socket), write to that descriptor itself and leave it open.
      if (errnoCode(e) === "ENXIO" && p.fd !== undefined)
        return handleFile(
          p.fd,
          p.path,
          fail,
          async () => undefined,
          async () => undefined,
          false,
        );
      throw fail(e);
    }
    return handleFile(
      h,
      p.path,
      fail,
      async () => undefined,
      async () => undefined,
    );
  }
  const target = p.target;
  const existing = p.existing;
  const mode = existing && !opts.forceMode ? existing.mode & 0o7777 : (opts.mode ?? 0o644);
  const dir = dirname(target);
  // A short prefix: the target's name may already be close to the 255-byte limit.
  const tmp = tempPath(dir, `.${basename(target).slice(0, 64)}.tmp`);
  let h: number;
  try {
    await mkdir(dir, { recursive: true });
    h = await openFd(tmp, "wx", mode);
  } catch (e) {
    throw fail(e);
  }
  return handleFile(
    h,
    target,
    fail,
    async (fd) => {
      await fsyncFd(fd);
      if (existing) {
        // The replaced file's mode exactly (umask applied at create) and, when we may, its owner.
        await chmod(tmp, mode);
        if (process.getuid?.() === 0) await chown(tmp, existing.uid, existing.gid).catch(() => undefined);
      }
    },
    async (committed) => {
      if (committed) {
        await rename(tmp, target);
        await fsyncDir(dir);
      } else await rm(tmp, { force: true });
    },
  );
}

/**
 * An OutputFile over a stream we do not own (standard output): each chunk is handed on and its write callback
 * awaited (backpressure, and a closed pipe fails the export instead of being lost); the stream is never ended or
 * destroyed, and what was written cannot be taken back on abort.
 */
function streamOutput(target: Writable, path: string, fail: (e: unknown) => unknown): OutputFile {
  let failure: unknown;
  // A reader that went away (EPIPE) is reported through the write callbacks; without a listener it would crash us.
  const onError = (e: unknown) => (failure ??= e);
  target.on("error", onError);
  const forward = (chunk: Buffer) =>
    new Promise<void>((resolve, reject) => {
      if (failure !== undefined) return reject(failure);
      target.write(chunk, (e) => (e ? reject((failure ??= e)) : resolve()));
    });
  const stream = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      forward(chunk).then(() => cb(), cb);
    },
  });
  stream.on("error", () => undefined);
  let done = false;
  const detach = () => target.off("error", onError);
  return {
    stream,
    target: path,
    async commit() {
      if (done) return;
      done = true;
      try {
        if (!stream.writableEnded) stream.end();
        await finished(stream);
      } catch (e) {
        throw fail(failure ?? e);
      } finally {
        detach();
      }
    },
    async abort() {
      if (done) return;
      done = true;
      if (!stream.destroyed) stream.destroy();
      await finished(stream).catch(() => undefined);
      detach();
    },
  };
}

/** A Writable that writes to `fd` and never closes it (the caller owns the descriptor). */
function fdWriter(fd: number): Writable {
  const writeAll = async (buf: Buffer): Promise<void> => {
    for (let off = 0; off < buf.length;) off += await writeFd(fd, buf, off, buf.length - off, null);
  };
  return new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      writeAll(chunk).then(() => cb(), cb);
    },
    writev(chunks, cb) {
      writeAll(Buffer.concat(chunks.map((c) => c.chunk as Buffer))).then(() => cb(), cb);
    },
  });
}

/** Shared by both plans: a write stream on `fd`; `beforeClose` runs on the open fd, `settle` after it closed. */
function handleFile(
  fd: number,
  target: string,
  fail: (e: unknown) => unknown,
  beforeClose: (fd: number) => Promise<void>,
  settle: (committed: boolean) => Promise<void>,
  ownsFd = true,
): OutputFile {
  // Our own writer: fs.WriteStream closes its fd on destroy() even with autoClose: false, and a second close of the
  // same number here would then close whatever descriptor had reused it meanwhile.
  const stream = fdWriter(fd);
  let closed = false;
  let done = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (ownsFd) await closeFd(fd).catch(() => undefined);
  };
  const abort = async (): Promise<void> => {
    if (done) return;
    done = true;
    if (!stream.destroyed) stream.destroy();
    // Let a write in flight finish before the descriptor is closed (and its number possibly reused).
    await finished(stream).catch(() => undefined);
    await close();
    await settle(false).catch(() => undefined);
  };
  const commit = async (): Promise<void> => {
    if (done) return;
    try {
      if (!stream.writableEnded) stream.end();
      await finished(stream);
      await beforeClose(fd);
      closed = true;
      if (ownsFd) await closeFd(fd);
      await settle(true);
      done = true;
    } catch (e) {
      await abort();
      throw fail(e);
    }
  };
  return { stream, target, commit, abort };
}

/** Write `data` to `path` as an output file (see openOutputFile). */
export async function writeOutputFile(path: string, data: Uint8Array | string, opts: OutputFileOptions = {}): Promise<void> {
  const f = await openOutputFile(path, opts);
  f.stream.end(data);
  await f.commit();
}
