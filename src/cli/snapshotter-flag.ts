// --snapshotter for build and run, with $TSBUILD_SNAPSHOTTER as its default.
import { UsageError } from "../errors.js";
import { SNAPSHOTTER_KINDS, type SnapshotterKind } from "../snapshot/snapshotter.js";

/** --snapshotter, else $TSBUILD_SNAPSHOTTER (tests force one kind with it), else auto. */
export function parseSnapshotter(flag: string | undefined, env: NodeJS.ProcessEnv): SnapshotterKind {
  const fromEnv = env["TSBUILD_SNAPSHOTTER"] || undefined;
  const value = flag ?? fromEnv ?? "auto";
  const kind = SNAPSHOTTER_KINDS.find((k) => k === value);
  if (kind === undefined)
    throw new UsageError(
      "BAD_FLAG_VALUE",
      `${flag !== undefined ? "--snapshotter" : "TSBUILD_SNAPSHOTTER"} takes ${SNAPSHOTTER_KINDS.join(", ")}, not ${JSON.stringify(value)}`,
    );
  return kind;
}
