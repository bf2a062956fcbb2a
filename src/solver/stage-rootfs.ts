// A stage's working rootfs, materialised lazily: cache hits only append layers to the stage's list, and the directory
// is brought up to date (by extracting the layers it lacks) only when a step must really run or another stage reads it.
import { mkdir } from "node:fs/promises";
import { createReadStream } from "node:fs";
import type { ContentStore } from "../store/types.js";
import { extractLayer } from "../layer/extract.js";
import { BuildError, throwIfAborted } from "../errors.js";
import type { LayerRef } from "./stage-state.js";

export interface StageRootfs {
  readonly dir: string;
  /** How many of the stage's layers the directory holds. */
  applied: number;
  /** Serialises materialisation: several consumers may ask at once (COPY --from of a finished stage). */
  queue: Promise<unknown>;
}

export function stageRootfs(dir: string): StageRootfs {
  return { dir, applied: 0, queue: Promise.resolve() };
}

/** Brings `fs.dir` up to `layers` (which must extend what it already holds) and returns its path. */
export function materialize(fs: StageRootfs, layers: readonly LayerRef[], content: ContentStore, signal: AbortSignal): Promise<string> {
  const next = fs.queue.then(async () => {
    await mkdir(fs.dir, { recursive: true });
    while (fs.applied < layers.length) {
      throwIfAborted(signal);
      const l = layers[fs.applied] as LayerRef;
      if (!(await content.has(l.diffId)))
        throw new BuildError("BLOB_NOT_FOUND", `layer ${l.diffId} is missing from the store`, {
          hint: "the store was pruned while it was in use, or damaged; re-import the base image (`tsbuild load -i`) and rebuild with --no-cache",
        });
      await extractLayer(createReadStream(content.path(l.diffId)), fs.dir, { signal });
      fs.applied++;
    }
    return fs.dir;
  });
  // A failure is reported to this caller; later callers retry from where the directory stands.
  fs.queue = next.catch(() => undefined);
  return next;
}
