// Reading small input files a user points at (Dockerfile, .dockerignore, ~/.docker/config.json): only regular files,
// opened with O_NONBLOCK so a FIFO can never block the open (a blocked open in libuv's pool ignores Ctrl-C/SIGTERM),
// checked with fstat on the opened file, and bounded in size so a huge file is an error instead of an exhausted heap.
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { BuildError, TsbuildError, throwIfAborted, type ErrorCode, type TsbuildErrorOptions } from "../errors.js";
import { errnoCode } from "../util/errno.js";

export type InputErrorClass = new (code: ErrorCode, message: string, opts?: TsbuildErrorOptions) => TsbuildError;

export interface ReadInputOptions {
  /** Refuse a file larger than this (bytes). */
  maxBytes: number;
  /** What the file is, for messages: "Dockerfile", ".dockerignore", "Docker config file". */
  what: string;
  /** How messages name the file (default: the path). */
  display?: string;
  /** The error class of the caller's layer (default BuildError). */
  errorClass?: InputErrorClass;
  signal?: AbortSignal;
}

const CHUNK = 64 * 1024;

function formatSize(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a named pipe (FIFO)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  return "not a regular file";
}

/** The file's text (UTF-8), or undefined when it does not exist; anything else unreadable is an error naming it. */
export async function readRegularFileIfExists(path: string, opts: ReadInputOptions): Promise<string | undefined> {
  const Err = opts.errorClass ?? BuildError;
  const name = opts.display ?? path;
  throwIfAborted(opts.signal);
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    const code = errnoCode(e);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new Err("INPUT_UNREADABLE", `cannot read the ${opts.what} ${name}: ${code === "EACCES" ? "permission denied" : (e as Error).message}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new Err("INPUT_NOT_A_FILE", `the ${opts.what} ${name} is ${kindOf(st)}, not a regular file`, {
        hint: `point tsbuild at a regular file${opts.what === "Dockerfile" ? " (or use -f - to read the Dockerfile from standard input)" : ""}`,
      });
    }
    const tooBig = (size: number) =>
      new Err("INPUT_TOO_LARGE", `the ${opts.what} ${name} is ${formatSize(size)}, more than the ${formatSize(opts.maxBytes)} tsbuild reads`, {
        hint: `a ${opts.what} this large is almost certainly a mistake; shrink it`,
      });
    if (st.size > opts.maxBytes) throw tooBig(st.size);
    // Read to the end (the file may have grown since fstat), never past the limit.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      throwIfAborted(opts.signal);
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, opts.maxBytes + 1 - total));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (total > opts.maxBytes) throw tooBig(total);
    }
    return Buffer.concat(chunks, total).toString("utf8");
  } catch (e) {
    if (e instanceof TsbuildError) throw e;
    throw new Err("INPUT_UNREADABLE", `cannot read the ${opts.what} ${name}: ${(e as Error).message}`, { cause: e });
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** As readRegularFileIfExists, but a missing file is an error (code INPUT_NOT_FOUND). */
export async function readRegularFile(path: string, opts: ReadInputOptions & { hint?: string }): Promise<string> {
  const text = await readRegularFileIfExists(path, opts);
  if (text === undefined) {
    const Err = opts.errorClass ?? BuildError;
    throw new Err("INPUT_NOT_FOUND", `the ${opts.what} ${opts.display ?? path} does not exist`, opts.hint ? { hint: opts.hint } : {});
  }
  return text;
}

/** Limits (bytes). BuildKit has none for the whole file; these are far above any real file and far below a heap. */
export const MAX_DOCKERFILE_BYTES = 10 * 1024 * 1024;
export const MAX_DOCKERIGNORE_BYTES = 4 * 1024 * 1024;
export const MAX_DOCKER_CONFIG_BYTES = 4 * 1024 * 1024;
