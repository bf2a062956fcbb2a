// The Engine wires the store, temp space, progress and the RUN machinery (snapshotters, an optional executor) that
// every command works with; no module-level state.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { openContentStore } from "./store/content-store.js";
import { openImageStore } from "./store/image-store.js";
import { defaultStoreRoot } from "./store/store-paths.js";
import { SCRATCH_OWNER_FILE, storeLayout } from "./store/layout.js";
import type { ContentStore, ImageStore } from "./store/types.js";
import { silentProgress, type ProgressSink } from "./progress/events.js";
import { createSnapshotter, type Snapshotter, type SnapshotterKind } from "./snapshot/snapshotter.js";
import type { Executor } from "./executor/types.js";

export interface Engine {
  readonly root: string;
  readonly content: ContentStore;
  readonly images: ImageStore;
  readonly progress: ProgressSink;
  /** A private scratch directory under the store root; the caller removes it with `release()`. */
  scratch(prefix: string): Promise<{ path: string; release(): Promise<void> }>;
  /** The snapshotter of a kind, one per engine (its overlayfs probe is remembered across builds). */
  snapshotter(kind: SnapshotterKind): Snapshotter;
  /** The executor RUN uses when the embedder passed one (a custom sandbox, or a fake in tests); else builds pick one. */
  readonly executor?: Executor;
}

export interface EngineOptions {
  root?: string;
  progress?: ProgressSink;
  executor?: Executor;
}

export function openEngine(opts: EngineOptions = {}): Engine {
  // Absolute: RUN hands paths under the root to the runtime and mount(8), which run in other directories.
  const root = resolve(opts.root ?? defaultStoreRoot());
  const layout = storeLayout(root);
  const content = openContentStore(root);
  const images = openImageStore(root);
  const snapshotters = new Map<SnapshotterKind, Snapshotter>();
  return {
    root,
    content,
    images,
    progress: opts.progress ?? silentProgress,
    ...(opts.executor ? { executor: opts.executor } : {}),
    snapshotter(kind) {
      let s = snapshotters.get(kind);
      if (!s) snapshotters.set(kind, (s = createSnapshotter(kind)));
      return s;
    },
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
