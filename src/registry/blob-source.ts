// What push uploads: a blob with a known digest and size that can be opened (again, or from an offset) as a stream,
// so a failed or chunked upload re-reads the file instead of holding the blob in memory.
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import type { Digest } from "../image/types.js";
import type { ContentStore } from "../store/types.js";

export interface BlobSource {
  digest: Digest;
  size: number;
  /** Bytes [start, end) of the blob. */
  open(start: number, end: number): Readable;
}

/** A blob of the local content store. */
export function storeBlobSource(store: ContentStore, digest: Digest, size: number): BlobSource {
  return {
    digest,
    size,
    open: (start, end) => createReadStream(store.path(digest), { start, end: end - 1, highWaterMark: 1024 * 1024 }),
  };
}
