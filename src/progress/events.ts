// Typed progress events emitted by the solver and consumed by renderers (plain, json, quiet).
import type { SourceRange } from "../source-range.js";

export type ProgressEvent =
  /** Before the first step: how many steps the build will show (FROM and each RUN/COPY/ADD/WORKDIR of the stages it builds). */
  | { kind: "plan"; steps: number }
  /**
   * `folded`: a config-only step (ENV, LABEL, ARG, EXPOSE, …) that edits the image config and makes no layer;
   * BuildKit shows no vertex for those, so the plain and terminal views leave it out unless it fails.
   */
  | { kind: "step-start"; node: string; name: string; range?: SourceRange; cached: boolean; folded?: boolean }
  | { kind: "step-log"; node: string; stream: "stdout" | "stderr"; data: Uint8Array }
  | { kind: "step-end"; node: string; durationMs: number; error?: string }
  | { kind: "warning"; message: string; range?: SourceRange; rule?: string }
  | { kind: "info"; message: string }
  /** How far a long COPY/ADD is: files and bytes copied so far, of the totals when known (throttled by the emitter). */
  | { kind: "step-progress"; node: string; files: number; bytes: number; totalFiles?: number; totalBytes?: number }
  /** Why a step missed the cache (shown by renderers that explain cache misses). */
  | { kind: "cache-miss"; node: string; reasons: string[] };

export interface ProgressSink {
  emit(event: ProgressEvent): void;
  close(): Promise<void>;
}

/** A sink that drops everything (library use without a renderer). */
export const silentProgress: ProgressSink = {
  emit() {},
  async close() {},
};

/** Collects events in memory; handy for library users and tests. */
export function collectingProgress(): ProgressSink & { events: ProgressEvent[] } {
  const events: ProgressEvent[] = [];
  return {
    events,
    emit(e) {
      events.push(e);
    },
    async close() {},
  };
}
