// The content-addressed blob store: blobs/sha256/<hex>, written through temp files in tmp/ and renamed into place
// once their sha256 is known (and verified). Content addressing makes concurrent and repeated writes idempotent.
import { createHash, type Hash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { Readable, Writable } from "node:stream";
import type { Digest } from "../image/types.js";
import { StoreError } from "../errors.js";
import { fsyncDir, tempPath, writeFileAtomic } from "./atomic-write.js";
import { storeLayout } from "./layout.js";
import type { BlobWriter, ContentStore } from "./types.js";

const READ_CHUNK = 256 * 1024;

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

function notFound(d: Digest, cause?: unknown): StoreError {
  return new StoreError("BLOB_NOT_FOUND", `blob ${d} is not in the store`, cause === undefined ? {} : { cause });
}

/**
 * Reads a blob file. Opening happens in construct(), so a missing blob surfaces as an 'error' event carrying a
 * StoreError BLOB_NOT_FOUND (never a raw ENOENT); pipeline()/for-await see it as a rejection.
 */
class BlobReadStream extends Readable {
  private handle: FileHandle | undefined;
  constructor(
    private readonly file: string,
    private readonly digest: Digest,
  ) {
    super({ highWaterMark: READ_CHUNK });
  }
  override _construct(cb: (err?: Error | null) => void): void {
    open(this.file, "r").then(
      (h) => {
        this.handle = h;
        cb();
      },
      (e: unknown) => cb(isNotFound(e) ? notFound(this.digest, e) : (e as Error)),
    );
  }
  override _read(size: number): void {
    const h = this.handle;
    if (!h) return void this.push(null);
    const buf = Buffer.allocUnsafe(Math.max(size, READ_CHUNK));
    h.read(buf, 0, buf.length, null).then(
      ({ bytesRead }) => this.push(bytesRead > 0 ? buf.subarray(0, bytesRead) : null),
      (e: unknown) => this.destroy(e as Error),
    );
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const h = this.handle;
    this.handle = undefined;
    closeThen(h, err, cb);
  }
}

/** Close a file handle (if open), then report the stream's own error: a failed close must not mask it. */
function closeThen(h: FileHandle | undefined, err: Error | null, cb: (err?: Error | null) => void): void {
  if (!h) return cb(err);
  h.close().then(
    () => cb(err),
    () => cb(err),
  );
}

/** Hashes while writing to a temp file; the file is fsynced and closed in final(), so commit() only renames. */
class HashingFileWriter extends Writable {
  readonly hash: Hash = createHash("sha256");
  size = 0;
  private handle: FileHandle | undefined;
  constructor(readonly tmp: string) {
    super();
  }
  override _construct(cb: (err?: Error | null) => void): void {
    open(this.tmp, "wx", 0o644).then(
      (h) => {
        this.handle = h;
        cb();
      },
      (e: unknown) => cb(e as Error),
    );
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    this.writeAll(chunk).then(() => cb(), cb);
  }
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    const buf = Buffer.concat(chunks.map((c) => c.chunk));
    this._write(buf, "binary", cb);
  }
  private async writeAll(buf: Buffer): Promise<void> {
    const h = this.handle;
    if (!h) throw new Error("temp file not open");
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await h.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
  }
  override _final(cb: (err?: Error | null) => void): void {
    const h = this.handle;
    this.handle = undefined;
    if (!h) return cb();
    h.sync()
      .then(() => h.close())
      .then(
        () => cb(),
        (e: unknown) => {
          void h.close().catch(() => undefined);
          cb(e as Error);
        },
      );
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const h = this.handle;
    this.handle = undefined;
    closeThen(h, err, cb);
  }
}

export function openContentStore(root: string): ContentStore {
  const layout = storeLayout(root);
  const { blobsDir: blobDir, tmpDir } = layout;
  // Refuses a malformed digest (StoreError INVALID_DIGEST) before it can become a path.
  const path = (d: Digest) => layout.blob(d);

  /** Move a verified temp file into place; if another writer got there first the temp is just dropped. */
  async function place(tmp: string, d: Digest): Promise<void> {
    const dest = path(d);
    await mkdir(blobDir, { recursive: true });
    if (await exists(dest)) {
      await rm(tmp, { force: true });
      return;
    }
    // rename(2) is atomic: racing writers of the same digest each replace it with identical bytes.
    await rename(tmp, dest);
    await fsyncDir(blobDir);
  }

  async function exists(p: string): Promise<boolean> {
    try {
      await stat(p);
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  const store: ContentStore = {
    root,
    path,
    async has(d) {
      return exists(path(d));
    },
    async size(d) {
      try {
        return (await stat(path(d))).size;
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw e;
      }
    },
    read(d) {
      return new BlobReadStream(path(d), d);
    },
    write(expected) {
      if (expected !== undefined) path(expected);
      // Sync mkdir: the writable has to exist before we return, and tmp/ is created once per store.
      mkdirSync(tmpDir, { recursive: true });
      const w = new HashingFileWriter(tempPath(tmpDir, "blob"));
      let settled: "finished" | Error | undefined;
      const done = new Promise<void>((resolve, reject) => {
        w.once("finish", () => {
          settled ??= "finished";
          resolve();
        });
        w.once("error", (e) => {
          settled ??= e;
          reject(e);
        });
        w.once("close", () => {
          if (settled === undefined) {
            settled = new StoreError("WRITE_ABORTED", "blob writer closed before the stream ended");
            reject(settled);
          }
        });
      });
      done.catch(() => undefined); // surfaced through commit()
      let committed: Promise<{ digest: Digest; size: number }> | undefined;
      const writer: BlobWriter = {
        stream: w,
        commit() {
          committed ??= (async () => {
            try {
              await done;
            } catch (e) {
              await rm(w.tmp, { force: true });
              throw e;
            }
            const digest: Digest = `sha256:${w.hash.digest("hex")}`;
            if (expected !== undefined && digest !== expected) {
              await rm(w.tmp, { force: true });
              throw new StoreError("DIGEST_MISMATCH", `content digest ${digest} does not match the expected ${expected}`);
            }
            try {
              await place(w.tmp, digest);
            } catch (e) {
              await rm(w.tmp, { force: true });
              throw e;
            }
            return { digest, size: w.size };
          })();
          return committed;
        },
        async abort() {
          if (!w.destroyed) w.destroy();
          await new Promise<void>((resolve) => (w.closed ? resolve() : w.once("close", () => resolve())));
          await rm(w.tmp, { force: true });
        },
      };
      return writer;
    },
    async putBytes(data, expected) {
      const buf = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      const digest: Digest = `sha256:${createHash("sha256").update(buf).digest("hex")}`;
      if (expected !== undefined && digest !== expected) {
        throw new StoreError("DIGEST_MISMATCH", `content digest ${digest} does not match the expected ${expected}`);
      }
      const dest = path(digest);
      if ((await store.size(digest)) !== buf.length) await writeFileAtomic(dest, buf, { tmpDir });
      return { digest, size: buf.length };
    },
    async readJson<T>(d: Digest): Promise<T> {
      let buf: Buffer;
      try {
        buf = await readFile(path(d));
      } catch (e) {
        if (isNotFound(e)) throw notFound(d, e);
        throw e;
      }
      const actual = `sha256:${createHash("sha256").update(buf).digest("hex")}`;
      if (actual !== d)
        throw new StoreError("BLOB_CORRUPT", `blob ${d} is corrupt (its content hashes to ${actual})`, {
          hint: "delete it and re-import or rebuild the image",
        });
      try {
        return JSON.parse(buf.toString("utf8")) as T;
      } catch (e) {
        throw new StoreError("BLOB_NOT_JSON", `blob ${d} is not valid JSON`, { cause: e });
      }
    },
  };
  return store;
}
