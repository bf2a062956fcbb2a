// One synchronous read of a file's bytes into a buffer the caller owns (reused between small files, so reading
// thousands of them allocates nothing per file).
import { readSync } from "node:fs";

/** Reads from the open file `fd` into `buf` at `offset` until `max` bytes or end of file; returns the count read. */
export function readUpTo(fd: number, buf: Buffer, max: number, offset = 0): number {
  let n = 0;
  for (;;) {
    const got = readSync(fd, buf, offset + n, max - n, null);
    if (got === 0) return n;
    n += got;
    if (n === max) return n;
  }
}
