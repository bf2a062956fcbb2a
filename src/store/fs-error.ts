// Turns an errno error from the file system (ENOENT, EISDIR, ENOSPC, …) about a path the user named into a
// TsbuildError that says which flag/path and what went wrong; anything else is returned unchanged, so real bugs
// still reach the CLI as bugs.
import { EnvironmentError, isTsbuildError, UsageError, type ErrorCode } from "../errors.js";
import { errnoCode } from "../util/errno.js";

/** The errno code of a Node fs error ("ENOENT"), or undefined for anything else. */
export { errnoCode };

/** Codes that describe the machine, not the path the user gave: never a bug, never the user's typo. */
const ENVIRONMENT = new Set(["ENOSPC", "EDQUOT", "EROFS", "EIO", "EMFILE", "ENFILE", "ENOMEM", "EFBIG"]);

const TEXT: Record<string, { code: ErrorCode; text: string; hint?: string }> = {
  ENOENT: { code: "PATH_NOT_FOUND", text: "does not exist (or a directory on the way does not)" },
  EACCES: { code: "PERMISSION_DENIED", text: "permission denied" },
  EPERM: { code: "PERMISSION_DENIED", text: "operation not permitted" },
  EISDIR: { code: "PATH_IS_DIRECTORY", text: "is a directory", hint: "give a file name, e.g. DIR/image.tar" },
  ENOTDIR: { code: "PATH_NOT_DIRECTORY", text: "a component of the path is not a directory" },
  EEXIST: { code: "PATH_EXISTS", text: "exists and is not a directory" },
  ENAMETOOLONG: { code: "PATH_TOO_LONG", text: "the path, or a name in it, is too long", hint: "file names are at most 255 bytes, paths at most 4095" },
  ELOOP: { code: "SYMLINK_LOOP", text: "too many levels of symbolic links" },
  ENXIO: { code: "PATH_NOT_WRITABLE", text: "is a socket or a device with nothing behind it; it cannot be opened for writing" },
  EPIPE: {
    code: "PATH_NOT_WRITABLE",
    text: "the reader closed the pipe before the end (broken pipe)",
    hint: "read the whole output, e.g. `tsbuild build -o - . > out.tar`",
  },
  ETXTBSY: { code: "PATH_BUSY", text: "is a running program" },
  EBUSY: { code: "PATH_BUSY", text: "is busy (a mount point?)" },
  ENOSPC: { code: "DISK_FULL", text: "no space left on the device", hint: "free some space (`tsbuild prune` for the store) or write somewhere else" },
  EDQUOT: { code: "DISK_FULL", text: "disk quota exceeded", hint: "free some space or write somewhere else" },
  EFBIG: { code: "DISK_FULL", text: "the file is too large for this file system" },
  EROFS: { code: "READ_ONLY_FS", text: "the file system is read-only", hint: "write somewhere else" },
  EIO: { code: "IO_ERROR", text: "input/output error (a failing disk?)" },
  EMFILE: { code: "TOO_MANY_FILES", text: "too many open files", hint: "raise the limit (ulimit -n)" },
  ENFILE: { code: "TOO_MANY_FILES", text: "too many open files in the system" },
  ENOMEM: { code: "OUT_OF_MEMORY", text: "out of memory" },
};

/**
 * `e` as a TsbuildError naming `what` (a flag such as "--metadata-file", or "output file") and `path`, when it is
 * an errno error; TsbuildErrors and other errors come back as they are. Machine trouble (disk full, read-only)
 * is an EnvironmentError, the rest a UsageError (the path the user gave cannot be used as asked).
 */
export function describeFsError(e: unknown, path: string, what: string): unknown {
  if (isTsbuildError(e)) return e;
  const code = errnoCode(e);
  if (code === undefined) return e;
  const t = TEXT[code] ?? { code: "FS_ERROR", text: (e as Error).message };
  const message = `${what} ${path}: ${t.text}`;
  const opts = { cause: e, ...(t.hint ? { hint: t.hint } : {}) };
  return ENVIRONMENT.has(code) ? new EnvironmentError(t.code, message, opts) : new UsageError(t.code, message, opts);
}

/** Is this an errno error about the machine (disk full, read-only file system, …) rather than a bug? */
export function isEnvironmentErrno(e: unknown): boolean {
  const code = errnoCode(e);
  return code !== undefined && ENVIRONMENT.has(code);
}

/** Run `fn`, turning its errno errors into errors naming `what` and `path` (see describeFsError). */
export async function withPathErrors<T>(path: string, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw describeFsError(e, path, what);
  }
}

/** Codes only writing produces: whatever stream failed, it was the one writing. */
const WRITE_SIDE = new Set(["ENOSPC", "EDQUOT", "EFBIG", "EROFS"]);

/**
 * Like describeFsError for a whole output directory `dir`: maps errors about a path inside it, or that only writing
 * produces (disk full), and leaves others — an unreadable store blob, say — as they are.
 */
export function describeOutputDirError(e: unknown, dir: string, what: string): unknown {
  const code = errnoCode(e);
  if (code === undefined || isTsbuildError(e)) return e;
  const p = (e as NodeJS.ErrnoException).path;
  if (p !== undefined && (p === dir || p.startsWith(dir.endsWith("/") ? dir : dir + "/"))) return describeFsError(e, p, what);
  if (WRITE_SIDE.has(code)) return describeFsError(e, dir, what);
  return e;
}
