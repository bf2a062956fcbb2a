// The Engine wires the store, temp space and progress that every command works with; no module-level state.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { openContentStore } from "./store/content-store.js";
import { openImageStore } from "./store/image-store.js";
import { defaultStoreRoot } from "./store/store-paths.js";
import { SCRATCH_OWNER_FILE, storeLayout } from "./store/layout.js";
import type { ContentStore, ImageStore } from "./store/types.js";
import { silentProgress, type ProgressSink } from "./progress/events.js";

export interface Engine {
  readonly root: string;
  readonly content: ContentStore;
  readonly images: ImageStore;
  readonly progress: ProgressSink;
  /** A private scratch directory under the store root; the caller removes it with `release()`. */
  scratch(prefix: string): Promise<{ path: string; release(): Promise<void> }>;
}

export interface EngineOptions {
  root?: string;
  progress?: ProgressSink;
}

export function openEngine(opts: EngineOptions = {}): Engine {
  // Absolute: RUN hands paths under the root to the runtime and mount(8), which run in other directories.
  const root = resolve(opts.root ?? defaultStoreRoot());
  const layout = storeLayout(root);
  const content = openContentStore(root);
  const images = openImageStore(root);
  return {
    root,
    content,
    images,
    progress: opts.progress ?? silentProgress,
    async scratch(prefix) {
      // Under the store root, so renames into the store stay on one filesystem.
      await mkdir(layout.tmpDir, { recursive: true });
      const path = await mkdtemp(layout.tmpPrefix(prefix));
      // The owner's pid lets cleanStaleScratch (store/locks.ts) recognise dirs left behind by a killed build.
      await writeFile(join(path, SCRATCH_OWNER_FILE), `${process.pid}\n`);
      return {
        path,
        release: () => rm(path, { recursive: true, force: true, maxRetries: 3 }),
      };
    },
  };
}
