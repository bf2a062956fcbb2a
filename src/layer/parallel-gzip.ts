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
  /** Cores to keep busy (default: all). Up to 2 × concurrency members are queued, so a core finishing one piece
   *  always finds the next one ready instead of waiting for the input to be read; memory stays under
   *  4 × concurrency × pieceSize. */
  concurrency?: number;
}

const PIECE = 4 << 20;

function gzipPiece(data: Buffer, level: number): Promise<Buffer> {
  return new Promise((resolve, reject) => gzip(data, { level }, (err, out) => (err ? reject(err) : resolve(out))));
}

export function createParallelGzip(opts: ParallelGzipOptions = {}): Transform {
  const level = opts.level ?? 6;
  const pieceSize = opts.pieceSize ?? PIECE;
  const concurrency = Math.max(1, opts.concurrency ?? availableParallelism());
  let buffered: Buffer[] = [];
  let bufferedLength = 0;
  // Compressions in flight, oldest first; output is pushed strictly in this order.
  const inflight: Promise<Buffer>[] = [];
  let members = 0;
  const emit = async (p: Promise<Buffer>) => {
    t.push(await p);
    members++;
  };

  const t: Transform = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      buffered.push(chunk);
      bufferedLength += chunk.length;
      void drainPieces(false).then(() => cb(), cb);
    },
    flush(cb: TransformCallback) {
      void drainPieces(true).then(() => cb(), cb);
    },
  });

  function takePiece(size: number): Buffer {
    const all = buffered.length === 1 ? (buffered[0] as Buffer) : Buffer.concat(buffered, bufferedLength);
    const piece = all.subarray(0, size);
    const rest = all.subarray(size);
    buffered = rest.length ? [rest] : [];
    bufferedLength = rest.length;
    return piece;
  }

  async function drainPieces(final: boolean): Promise<void> {
    while (bufferedLength >= pieceSize || (final && bufferedLength > 0)) {
      // Copy: the piece must not pin (or be changed with) the rest of the input buffer.
      const piece = Buffer.from(takePiece(Math.min(pieceSize, bufferedLength)));
      const p = gzipPiece(piece, level);
      p.catch(() => undefined); // awaited below, in order
      inflight.push(p);
      if (inflight.length >= 2 * concurrency) await emit(inflight.shift() as Promise<Buffer>);
    }
    if (!final) return;
    while (inflight.length) await emit(inflight.shift() as Promise<Buffer>);
    // An empty input still yields a valid (empty) gzip file.
    if (members === 0) await emit(gzipPiece(Buffer.alloc(0), level));
  }

  return t;
}
