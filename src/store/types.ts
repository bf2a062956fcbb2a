// Contracts of the on-disk store: the blob store and the image names. Where everything lives under the root
// (default ~/.local/share/tsbuild) is layout.ts; prune and du read the directories themselves (disk-usage.ts, gc.ts).
import type { Readable, Writable } from "node:stream";
import type { Descriptor, Digest } from "../image/types.js";

export interface BlobWriter {
  /** Write the blob's bytes here. A chunk is hashed and written when its write callback runs (the caller may reuse it). */
  readonly stream: Writable;
  /** After the stream has ended: fsync, verify against the expected digest, rename into place. Idempotent if the blob exists. */
  commit(): Promise<{ digest: Digest; size: number }>;
  /** Drop the temp file. */
  abort(): Promise<void>;
}

export interface ContentStore {
  /** The store root (for side files next to the blobs: see layout.ts, and free-space checks). */
  readonly root: string;
  has(d: Digest): Promise<boolean>;
  /** Size in bytes, or undefined when absent. */
  size(d: Digest): Promise<number | undefined>;
  /** Path of the blob file (for tools that want a path); the blob may not exist. */
  path(d: Digest): string;
  /** Stream a blob; rejects with StoreError (code BLOB_NOT_FOUND) when absent. */
  read(d: Digest): Readable;
  write(expected?: Digest): BlobWriter;
  /** Store small data (JSON documents); returns its digest. */
  putBytes(data: Uint8Array | string, expected?: Digest): Promise<{ digest: Digest; size: number }>;
  /** Read a small blob (a JSON document) fully, verify its digest and parse it. */
  readJson<T>(d: Digest): Promise<T>;
}

export interface ImageRecord {
  /** Normalised reference, e.g. docker.io/library/hello:1.0 */
  name: string;
  /** The image manifest in the content store. */
  target: Descriptor;
  /** When this name was last pointed at target (ISO 8601). */
  updated: string;
}

export interface ImageStore {
  get(name: string): Promise<ImageRecord | undefined>;
  set(name: string, target: Descriptor): Promise<ImageRecord>;
  delete(name: string): Promise<boolean>;
  list(): Promise<ImageRecord[]>;
}
