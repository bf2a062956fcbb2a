// One RUN step over the stage's working rootfs: run the process in a snapshot of it, and when it succeeds apply what
// changed onto the rootfs and return the new layer's entries. A failed or aborted RUN leaves the rootfs untouched.
import { mountStubsFor, RUNTIME_MOUNT_POINTS } from "../executor/hosts.js";
import type { Executor, ProcessIO, ProcessSpec } from "../executor/types.js";
import type { LayerEntry } from "../layer/types.js";
import { applyChanges, dropMountStubs, normalizeMountPoints } from "../snapshot/diff.js";
import type { Snapshot, Snapshotter } from "../snapshot/snapshotter.js";

export interface RunStepOptions {
  rootfs: string;
  /** An empty directory on the same filesystem as rootfs (files are renamed from it into rootfs). */
  scratch: string;
  executor: Executor;
  snapshotter: Snapshotter;
  spec: ProcessSpec;
  io: ProcessIO;
  signal: AbortSignal;
  /** SOURCE_DATE_EPOCH: clamps entry mtimes. */
  epoch?: number;
}

export interface RunStepResult {
  exitCode: number;
  /** Empty when the RUN changed nothing (record an empty_layer) or failed. */
  entries: LayerEntry[];
  /** The snapshot kind actually used. */
  snapshotter: Snapshot["kind"];
}

export async function runStep(opts: RunStepOptions): Promise<RunStepResult> {
  const snap = await opts.snapshotter.prepare(opts.rootfs, opts.scratch);
  try {
    const { exitCode } = await opts.executor.run(opts.spec, snap.path, opts.io, opts.signal);
    if (exitCode !== 0) return { exitCode, entries: [], snapshotter: snap.kind };
    const changes = await snap.changes();
    // As BuildKit: the network files' and the RUN's own mount stubs go, the runtime's /dev, /proc, /sys stay.
    const kept = await normalizeMountPoints(await dropMountStubs(changes, opts.rootfs, mountStubsFor(opts.spec)), opts.rootfs, RUNTIME_MOUNT_POINTS);
    const entries = await applyChanges(opts.rootfs, kept, opts.epoch === undefined ? {} : { epoch: opts.epoch });
    return { exitCode: 0, entries, snapshotter: snap.kind };
  } finally {
    await snap.release();
  }
}
