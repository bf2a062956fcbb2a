// Layer compression formats: detect by magic bytes and decompress as a stream. gzip uses zlib; bzip2, xz and zstd
// use the standard CLI tools (a missing tool is an EnvironmentError naming the Debian package to install).
import { spawn } from "node:child_process";
import { PassThrough, Readable, pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import { ArchiveError, EnvironmentError } from "../errors.js";

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

/** Read until MAGIC_LENGTH bytes (or the end) are in hand, then hand back a stream that still starts with them. */
async function peek(input: Readable): Promise<{ head: Buffer; stream: Readable }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const chunks: Buffer[] = [];
  let have = 0;
  let ended = false;
  while (have < MAGIC_LENGTH) {
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
          ? new EnvironmentError("TOOL_MISSING", `decompressing a ${kind} layer needs the \`${cmd}\` command, which is not installed`, { hint: `apt-get install -y ${pkg}`, cause: e })
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
        if (err && (err as NodeJS.ErrnoException).code !== "EPIPE") {
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
