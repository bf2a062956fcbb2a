// Where exporters put files: a tar (streamed through tar-stream into an output file: a temp file renamed into place on
// success, so a failed export leaves nothing behind, or a device/FIFO written through) or a directory. Blobs are
// streamed from the content store, never buffered.
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { AbortError, ArchiveError } from "../errors.js";
import type { Digest } from "../image/types.js";
import { tempPath, writeFileAtomic } from "../store/atomic-write.js";
import { describeFsError, describeOutputDirError } from "../store/fs-error.js";
import { openOutputFile, type OutputFile } from "../store/output-file.js";
import type { ContentStore } from "../store/types.js";

export interface LayoutWriter {
  /** A small file (JSON); `path` is relative, '/'-separated. */
  addBytes(path: string, data: Uint8Array): Promise<void>;
  /** A blob streamed from the store; `size` must match the stored blob. */
  addBlob(path: string, store: ContentStore, digest: Digest, size: number): Promise<void>;
  /** Finalise (tar: end and rename into place). */
  finish(): Promise<void>;
  /** Drop everything written (tar: the temp file; directory: nothing, blobs are content-addressed). */
  abort(): Promise<void>;
}

/** Fixed mtime so the same image always gives the same archive bytes. */
const EPOCH = new Date(0);

function sizeMismatch(digest: Digest, expected: number, got: number): ArchiveError {
  return new ArchiveError("BLOB_SIZE_MISMATCH", `blob ${digest} has ${got} bytes in the store, the manifest says ${expected}`);
}

/**
 * `what` names the destination in error messages (e.g. "--output dest"); default "output file". A stream (standard
 * output) is written as it goes and ended by finish(); abort() cannot take back what it already received.
 */
export async function openTarWriter(target: string | Writable, signal?: AbortSignal, what?: string): Promise<LayoutWriter> {
  const dest = typeof target === "string" ? target : "standard output";
  const out: Pick<OutputFile, "stream" | "commit" | "abort"> =
    typeof target === "string"
      ? await openOutputFile(target, what ? { what } : {})
      : { stream: target, commit: async () => undefined, abort: async () => undefined };
  const pack = tar.pack();
  const piping = pipeline(pack, out.stream);
  piping.catch(() => undefined); // awaited in finish()/abort()
  // The output's own write error (disk full), seen before the pipeline tears the pack down: the error to report.
  let writeFailure: unknown;
  out.stream.once("error", (e) => (writeFailure = e));
  const label = what ?? "output file";
  const explain = (e: unknown): unknown => (writeFailure !== undefined ? describeFsError(writeFailure, dest, label) : e);
  const dirs = new Set<string>();

  const check = () => {
    if (signal?.aborted) throw new AbortError();
  };

  function addEntry(h: Partial<tar.Header> & { name: string }, body?: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body) pack.entry(h, Buffer.from(body.buffer, body.byteOffset, body.byteLength), cb);
      else pack.entry(h, cb);
    });
  }

  // Parent directory entries first, as `docker save` writes them; some readers expect them.
  async function ensureDirs(path: string): Promise<void> {
    const parts = path.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (dirs.has(d)) continue;
      dirs.add(d);
      await addEntry({ name: `${d}/`, type: "directory", mode: 0o755, mtime: EPOCH, uid: 0, gid: 0 });
    }
  }

  async function addTarBlob(path: string, store: ContentStore, digest: Digest, size: number): Promise<void> {
    const actual = await store.size(digest);
    if (actual === undefined) throw new ArchiveError("BLOB_MISSING", `blob ${digest} is not in the store`);
    if (actual !== size) throw sizeMismatch(digest, size, actual);
    await ensureDirs(path);
    const src = store.read(digest);
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry({ name: path, type: "file", mode: 0o644, size, mtime: EPOCH, uid: 0, gid: 0 }, (err) => (err ? reject(err) : resolve()));
      sink.on("error", () => undefined);
      void (async () => {
        let written = 0;
        try {
          for await (const chunk of src as AsyncIterable<Buffer>) {
            if (signal?.aborted) throw new AbortError();
            written += chunk.length;
            if (written > size) break;
            if (!sink.write(chunk)) await new Promise<void>((r) => sink.once("drain", () => r()));
          }
          if (written !== size) throw sizeMismatch(digest, size, written);
          sink.end(null);
        } catch (err) {
          src.destroy();
          // Destroying the pack stops the output; the temp file is removed by abort().
          pack.destroy(err as Error);
          reject(err);
        }
      })();
    });
  }

  return {
    async addBytes(path, data) {
      check();
      try {
        await ensureDirs(path);
        await addEntry({ name: path, type: "file", mode: 0o644, size: data.byteLength, mtime: EPOCH, uid: 0, gid: 0 }, data);
      } catch (e) {
        throw explain(e);
      }
    },
    async addBlob(path, store, digest, size) {
      check();
      try {
        await addTarBlob(path, store, digest, size);
      } catch (e) {
        throw explain(e);
      }
    },
    async finish() {
      check();
      pack.finalize();
      // A write error (disk full) fails the pipeline: report it naming the file.
      const failed = await piping.then(
        () => undefined,
        (e: unknown) => e ?? new Error("tar stream failed"),
      );
      if (failed !== undefined) {
        await out.abort();
        throw describeFsError(writeFailure ?? failed, dest, label);
      }
      await out.commit();
    },
    async abort() {
      if (!pack.destroyed) pack.destroy();
      await piping.catch(() => undefined);
      await out.abort();
    },
  };
}

export async function openDirWriter(dest: string, signal?: AbortSignal, what = "output directory"): Promise<LayoutWriter> {
  try {
    await mkdir(dest, { recursive: true });
  } catch (e) {
    throw describeFsError(e, dest, what);
  }
  const check = () => {
    if (signal?.aborted) throw new AbortError();
  };
  return {
    async addBytes(path, data) {
      check();
      try {
        await writeFileAtomic(join(dest, path), data);
      } catch (e) {
        throw describeOutputDirError(e, dest, what);
      }
    },
    async addBlob(path, store, digest, size) {
      check();
      try {
        await addDirBlob(path, store, digest, size);
      } catch (e) {
        throw describeOutputDirError(e, dest, what);
      }
    },
    async finish() {},
    async abort() {},
  };

  async function addDirBlob(path: string, store: ContentStore, digest: Digest, size: number): Promise<void> {
    const target = join(dest, path);
    const actual = await store.size(digest);
    if (actual === undefined) throw new ArchiveError("BLOB_MISSING", `blob ${digest} is not in the store`);
    if (actual !== size) throw sizeMismatch(digest, size, actual);
    // Content-addressed: a blob already in the layout with the right size is the same blob.
    const existing = await stat(target).catch(() => undefined);
    if (existing?.isFile() && existing.size === size) return;
    await mkdir(dirname(target), { recursive: true });
    const tmp = tempPath(dirname(target), `.${basename(target)}.tmp`);
    try {
      await pipeline(store.read(digest), createWriteStream(tmp, { flags: "wx", mode: 0o644 }), signal ? { signal } : {});
      const got = (await stat(tmp)).size;
      if (got !== size) throw sizeMismatch(digest, size, got);
      await rename(tmp, target);
    } catch (e) {
      await rm(tmp, { force: true });
      if ((e as Error).name === "AbortError" && !(e instanceof AbortError)) throw new AbortError();
      throw e;
    }
  }
}
