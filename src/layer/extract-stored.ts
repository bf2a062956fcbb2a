// Unpacks layers kept in the content store into a directory, in order; a layer missing from the store is a clear
// error (the store was pruned or damaged while in use), never a half-explained ENOENT.
import { createReadStream } from "node:fs";
import { BuildError, throwIfAborted } from "../errors.js";
import type { Digest } from "../image/types.js";
import type { ContentStore } from "../store/types.js";
import { extractLayer } from "./extract.js";

export async function extractStoredLayers(
  content: ContentStore,
  layers: readonly { diffId: Digest }[],
  dest: string,
  signal: AbortSignal,
  /** Called after each layer (materialisation counts how far the directory got). */
  onLayer?: () => void,
): Promise<void> {
  for (const l of layers) {
    throwIfAborted(signal);
    if (!(await content.has(l.diffId)))
      throw new BuildError("BLOB_NOT_FOUND", `layer ${l.diffId} is missing from the store`, {
        hint: "the store was pruned or damaged while in use; re-import the base image (`tsbuild load -i`) and rebuild with --no-cache",
      });
    await extractLayer(createReadStream(content.path(l.diffId)), dest, { signal });
    onLayer?.();
  }
}
