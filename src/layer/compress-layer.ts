// Compress a layer stream for export or push: gzip by pigz on every core when it is installed (else node's zlib as
// parallel members, parallel-gzip.ts), zstd by Debian's `zstd` command. Options are fixed so the output depends only on
// the input, the format and the level — never on the machine's core count — and so a blob's digest is stable.
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { availableParallelism } from "node:os";
import { delimiter, join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AbortError, ArchiveError, EnvironmentError } from "../errors.js";
import { checkLevel, DEFAULT_LEVEL, type LayerCompressionFormat } from "./compression-options.js";
import { createParallelGzip } from "./parallel-gzip.js";

export interface CompressOptions {
  format: LayerCompressionFormat;
  /** gzip 0-9 (default 6), zstd 1-22 (default 3). */
  level?: number;
  signal?: AbortSignal;
  /** The tools' environment: PATH to find pigz and zstd, TSBUILD_NO_PIGZ=1 to not use pigz; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** pigz's block size in KiB: part of the output format (with -n and the level), unlike -p, so it stays fixed. */
const PIGZ_BLOCK_KIB = 128;

/** The pigz executable on PATH, unless TSBUILD_NO_PIGZ is set; undefined means node's zlib is used. */
export function findPigz(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TSBUILD_NO_PIGZ && env.TSBUILD_NO_PIGZ !== "0") return undefined;
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, "pigz");
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Which gzip implementation compressLayerStream uses in `env` (for diagnostics and the bench). */
export function gzipEngine(env: NodeJS.ProcessEnv = process.env): "pigz" | "zlib" {
  return findPigz(env) ? "pigz" : "zlib";
}

/** Compress `src` into `dest` (both streams; never the whole layer in memory). */
export async function compressLayerStream(src: Readable, dest: Writable, opts: CompressOptions): Promise<void> {
  const level = opts.level ?? DEFAULT_LEVEL[opts.format];
  checkLevel(opts.format, level, "compression level");
  const threads = String(Math.max(1, availableParallelism()));
  if (opts.format === "zstd") {
    // -T≥1 is zstd's multi-threaded mode, whose output is the same for any number of workers (not --single-thread's).
    const args = ["-q", "-c", `-${level}`, ...(level > 19 ? ["--ultra"] : []), `-T${threads}`];
    return viaTool("zstd", args, "zstd", src, dest, opts);
  }
  const pigz = findPigz(opts.env);
  if (pigz) {
    // -n: no name or mtime in the header; -b fixed, so the output is the same for every -p.
    return viaTool(pigz, ["-c", "-n", `-${level}`, "-b", String(PIGZ_BLOCK_KIB), "-p", threads], "pigz", src, dest, opts);
  }
  await pipeline(src, createParallelGzip({ level }), dest, opts.signal ? { signal: opts.signal } : {});
}

/** src → cmd's stdin, its stdout → dest; fails with the tool's stderr when it exits non-zero. */
function viaTool(cmd: string, args: string[], pkg: string, src: Readable, dest: Writable, opts: CompressOptions): Promise<void> {
  const { signal } = opts;
  return new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env });
    let stderr = "";
    let failed: unknown;
    const fail = (e: unknown) => {
      if (failed !== undefined) return;
      failed = e;
      if (child.exitCode === null) child.kill();
      src.destroy();
      reject(e);
    };
    const onAbort = () => fail(new AbortError("the export was cancelled"));
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    child.once("error", (e: NodeJS.ErrnoException) =>
      fail(
        e.code === "ENOENT"
          ? new EnvironmentError(
              "TOOL_MISSING",
              `compressing a layer as ${pkg === "pigz" ? "gzip" : pkg} needs the \`${cmd}\` command, which is not installed`,
              {
                hint: `apt-get install -y ${pkg}`,
                cause: e,
              },
            )
          : e,
      ),
    );
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    const input = pipeline(src, child.stdin).catch((e: unknown) => {
      // EPIPE: the tool stopped reading; its exit status says why.
      if ((e as NodeJS.ErrnoException).code !== "EPIPE") throw e;
    });
    const output = pipeline(child.stdout, dest, { end: false });
    const exited = new Promise<void>((res, rej) =>
      child.once("close", (code, sig) =>
        code === 0
          ? res()
          : rej(new ArchiveError("COMPRESS_FAILED", `${cmd} ${args.join(" ")} failed (${sig ?? `exit ${code}`}): ${stderr.trim() || "no message"}`)),
      ),
    );
    Promise.all([input, output, exited]).then(
      () => {
        signal?.removeEventListener("abort", onAbort);
        if (failed !== undefined) return;
        dest.end(() => resolve());
      },
      (e: unknown) => {
        signal?.removeEventListener("abort", onAbort);
        fail(e);
      },
    );
  });
}
