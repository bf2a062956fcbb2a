// Test-only access to a store's blobs by path (ContentStore has no list/delete/readBytes: no production caller
// needs them). Paths come from src/store/layout.ts, so tests follow the layout's owner.
import { readdir, readFile, rm } from "node:fs/promises";
import type { Digest } from "../../src/image/types.js";
import { storeLayout } from "../../src/store/layout.js";
import type { ContentStore } from "../../src/store/types.js";

/** Every blob digest in the store, sorted. */
export async function storedBlobs(store: ContentStore | string): Promise<Digest[]> {
  const layout = storeLayout(typeof store === "string" ? store : store.root);
  const names = await readdir(layout.blobsDir).catch(() => [] as string[]);
  return names
    .map((n) => layout.blobDigest(n))
    .filter((d): d is Digest => d !== undefined)
    .sort();
}

/** Remove a blob file (quiet when absent), as a damaged or half-pruned store would lack it. */
export async function deleteBlob(store: ContentStore, d: Digest): Promise<void> {
  await rm(store.path(d), { force: true });
}

/** A blob's bytes, unverified. */
export async function blobBytes(store: ContentStore, d: Digest): Promise<Buffer> {
  return readFile(store.path(d));
}
