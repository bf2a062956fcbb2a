// Layer compression formats: detect by magic bytes and decompress as a stream. gzip uses zlib; bzip2, xz and zstd
// use the standard CLI tools (a missing tool is an EnvironmentError naming the Debian package to install).
import { spawn } from "node:child_process";
import { statfs } from "node:fs/promises";
import { PassThrough, Readable, Transform, pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import { ArchiveError, EnvironmentError } from "../errors.js";
import { errnoCode } from "../util/errno.js";

export type CompressionKind = "gzip" | "bzip2" | "xz" | "zstd" | "none";

const MAGIC: [Exclude<CompressionKind, "none">, number[]][] = [
  ["gzip", [0x1f, 0x8b]],
  ["bzip2", [0x42, 0x5a, 0x68]], // "BZh"
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
];
/** Bytes detectCompression needs to see to decide. */
export const MAGIC_LENGTH = 6;

export function detectCompression(head: Uint8Array): CompressionKind {
  for (const [kind, magic] of MAGIC) {
    if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) return kind;
  }
  return "none";
}

const TOOLS: Record<"bzip2" | "xz" | "zstd", { cmd: string; pkg: string }> = {
  bzip2: { cmd: "bzip2", pkg: "bzip2" },
  xz: { cmd: "xz", pkg: "xz-utils" },
  zstd: { cmd: "zstd", pkg: "zstd" },
};

/** Read until `length` bytes (or the end) are in hand, then hand back a stream that still starts with them. */
export async function peek(input: Readable, length = MAGIC_LENGTH): Promise<{ head: Buffer; stream: Readable }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const chunks: Buffer[] = [];
  let have = 0;
  let ended = false;
  while (have < length) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    const b = typeof r.value === "string" ? Buffer.from(r.value) : r.value;
    chunks.push(b);
    have += b.length;
  }
  const head = Buffer.concat(chunks);
  async function* replay(): AsyncGenerator<Buffer> {
    try {
      if (head.length > 0) yield head;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield typeof r.value === "string" ? Buffer.from(r.value) : r.value;
      }
    } finally {
      // Early exit by the consumer: release the source.
      await it.return?.();
    }
  }
  return { head, stream: Readable.from(replay(), { objectMode: false }) };
}

function viaTool(kind: "bzip2" | "xz" | "zstd", src: Readable): Promise<Readable> {
  const { cmd, pkg } = TOOLS[kind];
  const child = spawn(cmd, ["-dc"], { stdio: ["pipe", "pipe", "pipe"] });
  return new Promise<Readable>((resolve, reject) => {
    child.once("error", (e: NodeJS.ErrnoException) => {
      src.destroy();
      reject(
        e.code === "ENOENT"
          ? new EnvironmentError("TOOL_MISSING", `decompressing a ${kind} layer needs the \`${cmd}\` command, which is not installed`, {
              hint: `apt-get install -y ${pkg}`,
              cause: e,
            })
          : e,
      );
    });
    child.once("spawn", () => {
      const out = new PassThrough();
      let stderr = "";
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (d: string) => {
        if (stderr.length < 4096) stderr += d;
      });
      pipeline(src, child.stdin, (err) => {
        // EPIPE just means the tool stopped reading; its exit status reports why.
        if (err && errnoCode(err) !== "EPIPE") {
          out.destroy(err);
          child.kill();
        }
      });
      child.stdout.pipe(out, { end: false });
      child.once("close", (code, signal) => {
        if (code === 0) out.end();
        else if (!out.destroyed)
          out.destroy(new ArchiveError("DECOMPRESS_FAILED", `${cmd} -dc failed (${signal ?? `exit ${code}`}): ${stderr.trim() || "corrupt input"}`));
      });
      out.once("close", () => {
        if (child.exitCode === null) child.kill();
        src.destroy();
      });
      resolve(out);
    });
  });
}

/** Sniff `input` and return a stream of its decompressed bytes (the input itself, re-wrapped, when uncompressed). */
export async function decompressStream(input: Readable): Promise<{ kind: CompressionKind; stream: Readable }> {
  const { head, stream } = await peek(input);
  const kind = detectCompression(head);
  switch (kind) {
    case "none":
      return { kind, stream };
    case "gzip": {
      const gunzip = createGunzip();
      pipeline(stream, gunzip, () => undefined); // errors surface on gunzip, which pipeline destroys
      return { kind, stream: gunzip };
    }
    default:
      return { kind, stream: await viaTool(kind, stream) };
  }
}

/**
 * An allowance of decompressed bytes shared by every layer of one load or pull: a small compressed blob can expand
 * without bound (a decompression bomb), and its diff_id can only be checked at the end, so writing stops the moment
 * the total would pass the allowance (by default the store's free space minus a reserve), not when the disk is full.
 */
export interface ByteBudget {
  readonly limit: number;
  /** Why the limit is what it is, for the message: "the free space of /var/lib/tsbuild minus 256 MiB". */
  readonly why: string;
  used: number;
}

/** Keep this much free in the store's filesystem by default. */
export const DISK_RESERVE_BYTES = 256 * 1024 * 1024;

/** A budget of `limit` bytes if given, else the free space of `dir`'s filesystem minus DISK_RESERVE_BYTES. */
export async function decompressionBudget(dir: string, limit?: number): Promise<ByteBudget> {
  if (limit !== undefined) return { limit, why: "the configured limit", used: 0 };
  try {
    const st = await statfs(dir);
    return {
      limit: Math.max(0, st.bavail * st.bsize - DISK_RESERVE_BYTES),
      why: `the free space in ${dir} minus a ${DISK_RESERVE_BYTES / (1024 * 1024)} MiB reserve`,
      used: 0,
    };
  } catch {
    return { limit: Number.MAX_SAFE_INTEGER, why: "no limit", used: 0 };
  }
}

/** Passes bytes through while the budget lasts; past it, fails with ArchiveError LAYER_TOO_LARGE naming `what`. */
export function budgetedStream(budget: ByteBudget, what: string): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      budget.used += chunk.length;
      if (budget.used > budget.limit) {
        cb(
          new ArchiveError(
            "LAYER_TOO_LARGE",
            `${what} expands to more than ${budget.limit} bytes when decompressed (${budget.why}); stopped before filling the disk`,
            {
              hint: "a compressed layer this large is corrupt or a decompression bomb; free disk space if the image is genuine",
            },
          ),
        );
        return;
      }
      cb(null, chunk);
    },
  });
}
