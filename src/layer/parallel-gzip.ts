// gzip on every core: the input is cut into fixed 4 MiB pieces, each compressed as its own gzip member on the thread
// pool, and the members are written in order. A multi-member gzip file is standard (RFC 1952 §2.2) and every layer
// reader (Go's compress/gzip, zlib, GNU gzip) reads it as one stream. Fixed piece boundaries keep the output — and
// so the blob digest — independent of the machine's core count.
import { Transform, type TransformCallback } from "node:stream";
import { gzip } from "node:zlib";
import { availableParallelism } from "node:os";

export interface ParallelGzipOptions {
  level?: number;
  /** Bytes per gzip member (default 4 MiB); part of the output format, so keep it fixed. */
  pieceSize?: number;
  /** Cores to keep busy (default: all). concurrency + 1 members are in flight (fewer if the thread pool is small), so
   *  a core finishing one piece finds the next one compressing already. */
  concurrency?: number;
}

const PIECE = 4 << 20;
/** Pieces read ahead of the pool (memory: up to (READ_AHEAD + concurrency + 2) × pieceSize). */
const READ_AHEAD = 2;

/** libuv's thread pool (node reads UV_THREADPOOL_SIZE once, default 4). */
function threadPoolSize(env: NodeJS.ProcessEnv): number {
  const n = Number.parseInt(env.UV_THREADPOOL_SIZE ?? "", 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 1024) : 4;
}

function gzipPiece(data: Buffer, level: number): Promise<Buffer> {
  // One output buffer that fits the whole member (deflate's worst case is input + 0.1% + a few bytes): zlib then runs
  // the piece as one thread-pool job, instead of returning to the busy main thread every 16 KiB of output to be
  // resubmitted. The bytes are the same for any output buffer size.
  const chunkSize = Math.max(64 * 1024, data.length + (data.length >> 8) + 1024);
  return new Promise((resolve, reject) => gzip(data, { level, chunkSize }, (err, out) => (err ? reject(err) : resolve(out))));
}

export function createParallelGzip(opts: ParallelGzipOptions = {}): Transform {
  const level = opts.level ?? 6;
  const pieceSize = opts.pieceSize ?? PIECE;
  const concurrency = Math.max(1, opts.concurrency ?? availableParallelism());
  // Members share the pool with the file reads that feed them and the writes of their output: leave those a thread,
  // or every read waits behind a whole piece's compression.
  const maxInflight = Math.max(1, Math.min(concurrency + 1, threadPoolSize(process.env) - 1));
  let buffered: Buffer[] = [];
  let bufferedLength = 0;
  // Pieces cut from the input, waiting for a pool thread: reading ahead by READ_AHEAD pieces means a finished member
  // is replaced at once, not after the next 4 MiB have been read chunk by chunk (each read a trip through the main
  // thread, slow on a busy machine).
  const ready: Buffer[] = [];
  // Compressions in flight, oldest first; output is pushed strictly in this order.
  const inflight: Promise<Buffer>[] = [];
  let members = 0;
  let draining = false;
  /** The input's callback, held while READ_AHEAD pieces are waiting: backpressure on the source. */
  let paused: TransformCallback | undefined;
  let flushed: TransformCallback | undefined;

  const t: Transform = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      buffered.push(chunk);
      bufferedLength += chunk.length;
      while (bufferedLength >= pieceSize) ready.push(takePiece(pieceSize));
      paused = cb;
      pump();
    },
    flush(cb: TransformCallback) {
      if (bufferedLength > 0) ready.push(takePiece(bufferedLength));
      // An empty input still yields a valid (empty) gzip file.
      else if (members === 0 && ready.length === 0 && inflight.length === 0) ready.push(Buffer.alloc(0));
      flushed = cb;
      pump();
    },
  });

  function takePiece(size: number): Buffer {
    const all = buffered.length === 1 ? (buffered[0] as Buffer) : Buffer.concat(buffered, bufferedLength);
    const rest = all.subarray(size);
    buffered = rest.length ? [rest] : [];
    bufferedLength = rest.length;
    // Copy: the piece must not pin (or be changed with) the rest of the input buffer.
    return Buffer.from(all.subarray(0, size));
  }

  /** Start what the pool has room for, let the input go on while read-ahead has room, and drain finished members. */
  function pump(): void {
    while (inflight.length < maxInflight && ready.length > 0) {
      const p = gzipPiece(ready.shift() as Buffer, level);
      p.catch(() => undefined); // awaited in drain(), in order
      inflight.push(p);
    }
    if (paused && ready.length < READ_AHEAD) {
      const cb = paused;
      paused = undefined;
      cb();
    }
    if (!draining) void drain();
  }

  async function drain(): Promise<void> {
    draining = true;
    try {
      while (inflight.length > 0) {
        const out = await (inflight[0] as Promise<Buffer>);
        inflight.shift();
        members++;
        t.push(out);
        pump();
      }
    } catch (e) {
      t.destroy(e as Error);
      return;
    } finally {
      draining = false;
    }
    if (flushed && ready.length === 0) {
      const cb = flushed;
      flushed = undefined;
      cb();
    }
  }

  return t;
}
