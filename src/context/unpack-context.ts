// A build context that arrives as a byte stream (stdin, an http download): a tar (plain, gzip, bzip2, xz) is
// unpacked into a directory with layer/extract.ts in its plain-tar mode (no member outside the directory, symlinks
// kept but never followed, device nodes left out); anything else is a bare Dockerfile, as `docker build -` does.
import { pipeline, type Readable } from "node:stream";
import { AbortError, ArchiveError, BuildError, isTsbuildError } from "../errors.js";
import { MAX_DOCKERFILE_BYTES } from "../fs/read-input.js";
import { budgetedStream, decompressionBudget, decompressStream, detectCompression, peek, type CompressionKind } from "../layer/compression.js";
import { extractLayer } from "../layer/extract.js";
import { tarTail } from "../layer/tar-tail.js";

export type UnpackedContext = { kind: "tar"; compression: CompressionKind } | { kind: "dockerfile"; text: string };

export interface UnpackContextOptions {
  /** How messages name the input: "standard input", "https://host/ctx.tar.gz". */
  source: string;
  signal?: AbortSignal;
  /** Called for each thing left out (device nodes), with a message for the user. */
  onWarning?(message: string): void;
  /** Most bytes the unpacked tar may hold (default: the destination's free space minus a reserve). */
  maxBytes?: number;
}

const TAR_BLOCK = 512;

/** docker's IsArchive for uncompressed input: the first 512 bytes are a tar header with a valid checksum. */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < TAR_BLOCK) return false;
  const field = Buffer.from(block.subarray(148, 156))
    .toString("latin1")
    .replace(/[\0 ]+$/g, "")
    .trim();
  if (!/^[0-7]+$/.test(field)) return false;
  const want = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

/**
 * Read `input` once: a tar goes into the existing empty directory `dest`, streaming; other bytes are returned as the
 * Dockerfile's text (at most MAX_DOCKERFILE_BYTES). A truncated or corrupt archive is an ArchiveError naming `source`.
 */
export async function unpackContext(input: Readable, dest: string, opts: UnpackContextOptions): Promise<UnpackedContext> {
  const { source, signal } = opts;
  let peeked: Awaited<ReturnType<typeof peek>>;
  try {
    peeked = await peek(input, TAR_BLOCK);
  } catch (e) {
    throw readError(e, source, signal);
  }
  const { head, stream } = peeked;
  const compression = detectCompression(head);
  if (compression === "none" && !isTarHeader(head)) return { kind: "dockerfile", text: await readText(stream, source, signal) };

  let kind: CompressionKind = compression;
  const tail = tarTail();
  const budget = await decompressionBudget(dest, opts.maxBytes);
  const describe = (e: unknown): unknown => {
    if (signal?.aborted || e instanceof AbortError) return new AbortError();
    if (isTsbuildError(e)) {
      if (e.code === "DECOMPRESS_FAILED")
        return new ArchiveError("TRUNCATED", `the build context tar from ${source} cannot be decompressed (${kind}): it is truncated or corrupt`, {
          hint: "send the whole archive again",
          cause: e,
        });
      // Same class and code; the message says where the archive came from and that its members are a context's.
      const message = `build context tar from ${source}: ${e.message.replace(/layer entry/g, "member")}`;
      return Object.assign(Object.create(Object.getPrototypeOf(e) as object) as typeof e, e, { message, cause: e, stack: e.stack });
    }
    const msg = (e as Error | undefined)?.message ?? String(e);
    if (/unexpected end|premature|truncated|incorrect header check|invalid/i.test(msg) || kind !== "none")
      return new ArchiveError("TRUNCATED", `the build context tar from ${source} is truncated or corrupt (${msg})`, {
        hint: "send the whole archive again",
        cause: e,
      });
    return new ArchiveError("CORRUPT_ARCHIVE", `the build context tar from ${source} is corrupt: ${msg}`, { cause: e });
  };
  try {
    const decompressed = await decompressStream(stream);
    kind = decompressed.kind;
    const budgeted = budgetedStream(budget, `the build context tar from ${source}`);
    pipeline(decompressed.stream, budgeted, tail, () => undefined);
    await extractLayer(tail, dest, {
      ...(signal ? { signal } : {}),
      plainTar: true,
      // Owners as the files' creator, like a directory context the user made: a context's uids mean nothing here.
      root: false,
      skipDevices: (e) =>
        opts.onWarning?.(`build context tar from ${source}: left out the device node ${JSON.stringify(e.path)} (a build context holds no devices)`),
    });
  } catch (e) {
    throw describe(e);
  }
  if (!tail.ended())
    throw new ArchiveError("TRUNCATED", `the build context tar from ${source} is truncated: it has no end-of-archive marker`, {
      hint: "send the whole archive again",
    });
  return { kind: "tar", compression: kind };
}

async function readText(stream: Readable, source: string, signal: AbortSignal | undefined): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const c of stream) {
      if (signal?.aborted) throw new AbortError();
      const b = typeof c === "string" ? Buffer.from(c) : (c as Buffer);
      total += b.length;
      if (total > MAX_DOCKERFILE_BYTES)
        throw new BuildError(
          "INPUT_TOO_LARGE",
          `the Dockerfile from ${source} is more than ${MAX_DOCKERFILE_BYTES / (1024 * 1024)} MiB and not a tar archive`,
          { hint: "a build context must be a tar (plain, gzip, bzip2 or xz); anything else is read as a Dockerfile" },
        );
      chunks.push(b);
    }
  } catch (e) {
    stream.destroy();
    throw readError(e, source, signal);
  }
  return Buffer.concat(chunks, total).toString("utf8");
}

function readError(e: unknown, source: string, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return new AbortError();
  if (isTsbuildError(e)) return e;
  return new BuildError("INPUT_UNREADABLE", `cannot read the build context from ${source}: ${(e as Error | undefined)?.message ?? String(e)}`, {
    cause: e,
  });
}
