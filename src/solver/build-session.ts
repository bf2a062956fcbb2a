// One build's session: the services (store, executor, limiter, caches) and facts (plan, args, epoch) every step
// handler reads, plus the per-build memo tables. Steps reach other stages only through `stages`, never the scheduler.
import type { Engine } from "../engine.js";
import { BuildError, TsbuildError, attachRange } from "../errors.js";
import { type BuildPlan } from "../frontend/plan.js";
import { expandWord } from "../frontend/expand.js";
import type { SourceRange, Stage, StagedDockerfile } from "../frontend/types.js";
import { type BuildContext } from "../context/build-context.js";
import { type StageState } from "./stage-state.js";
import { type MountSharing, type SecretSource } from "./mount-spec.js";
import type { SshAgents } from "./ssh-agents.js";
import type { Executor } from "../executor/types.js";
import type { Snapshotter, SnapshotterKind } from "../snapshot/snapshotter.js";
import { type Hasher } from "../util/hasher.js";
import { type StepRecord } from "../cache/records.js";
import { type FileHashCache } from "../context/file-hash-cache.js";
import { type SnapshotContext, type StageRootfs } from "./stage-rootfs.js";
import { type CacheSource } from "../cache/cache-source.js";
import type { RegistryOptions } from "../registry/client.js";
import type { ResolvedBase } from "./base-image.js";
import type { ProgressSink } from "../progress/events.js";
import type { Platform } from "../image/types.js";

export interface StageResult {
  state: StageState;
  fs: StageRootfs;
}

/** How a step reaches another stage: its result and its rootfs on disk (the scheduler provides both). */
export interface StageAccess {
  result(stage: Stage): Promise<StageResult>;
  dir(stage: Stage): Promise<string>;
}

/** A directory named by --build-context: read as COPY --from=NAME and RUN --mount from=NAME see it. */
export interface NamedContextDir {
  context: BuildContext;
  hashCache: () => Promise<FileHashCache>;
}

export interface BuildSession {
  engine: Engine;
  /** This build's progress sink (BuildOptions.progress, else the engine's): concurrent builds never share one. */
  progress: ProgressSink;
  stages: StageAccess;
  staged: StagedDockerfile;
  plan: BuildPlan;
  escape: string;
  globalArgs: Map<string, string>;
  buildArgs: Map<string, string>;
  usedBuildArgs: Set<string>;
  context: BuildContext;
  workdir: string;
  /** mtime for directories a COPY/WORKDIR creates: SOURCE_DATE_EPOCH, else 0 (deterministic). */
  epoch: number;
  /** SOURCE_DATE_EPOCH when set: file mtimes RUN writes are clamped to it (never otherwise). */
  clampEpoch: number | undefined;
  created: string;
  /** The platform this session builds (TARGETPLATFORM), normalised. */
  platform: Platform;
  /** How progress names this session's platform in a multi-platform build ("linux/arm64"); absent for one platform. */
  platformLabel?: string;
  /** Steps shared by the platforms of one multi-platform build, by cache key: the first session to reach a key runs
   *  it, the others wait for its record (a FROM --platform=$BUILDPLATFORM stage runs once for every platform). */
  vertices: Map<string, Promise<StepRecord>>;
  signal: AbortSignal;
  stageRuns: Map<number, Promise<StageResult>>;
  imageRootfs: Map<string, Promise<string>>;
  limit: <T>(fn: () => Promise<T>) => Promise<T>;
  stepCounter: number;
  /** Chosen on the first RUN, so builds without RUN need no runtime installed. */
  executor: () => Promise<Executor>;
  /** Entitlements granted with --allow. */
  allow: Set<string>;
  /** The network of a RUN without --network=. */
  defaultNetwork: "default" | "none" | "host";
  /** --add-host entries for every RUN's /etc/hosts. */
  addHosts: { host: string; ip: string }[];
  snapshotter: Snapshotter;
  secrets: Map<string, SecretSource>;
  /** The --ssh agents, shared by the platforms' sessions. */
  ssh: SshAgents;
  hasher: Hasher;
  /** Opened on the first COPY/ADD from the context; saved when the build ends. */
  hashCache: () => Promise<FileHashCache>;
  /** `--build-context NAME=DIR` directories (NAME lower-cased), each with its own stat cache. */
  namedContexts: ReadonlyMap<string, NamedContextDir>;
  noCache: (stage: Stage) => boolean;
  /** Identifies "the same step" across builds, for explaining misses: context + Dockerfile. */
  explainScope: string;
  steps: StepReport[];
  records: { stage: number; record: StepRecord }[];
  /** RUN --mount=type=cache mounts of every RUN planned (hit or not), for --cache-to …,cache-mounts=true. */
  cacheMounts: { stage: number; id: string; sharing: MountSharing }[];
  cacheFrom: CacheSource[];
  pull: boolean;
  registry: RegistryOptions;
  resolved: Map<string, Promise<ResolvedBase>>;
  /** Kept snapshots of unpacked layers (overlay lowerdirs for the stage dirs). */
  snapshots: SnapshotContext;
  /** Every stage dir of this build, to unmount before the scratch dir goes. */
  rootfsList: StageRootfs[];
}

export function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

/** `raw`: a COPY/ADD heredoc body, expanded as BuildKit's ExpandRaw does (quotes kept, backslash the escape whatever `# escape=` says). */
export function expand(run: BuildSession, word: string, env: Map<string, string>, range: SourceRange, raw = false): string {
  try {
    return expandWord(word, env, raw ? { escape: "\\", range, skipProcessQuotes: true } : { escape: run.escape, range });
  } catch (e) {
    if (e instanceof TsbuildError) throw attachRange(e, range);
    throw e;
  }
}

/** Proxy variables pass from --build-arg into RUN without an ARG line, as in Docker (and stay out of history). */
export const PROXY_ARGS = ["HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"].flatMap((n) => [n, n.toLowerCase()]);

/** BuildKit's step prefix: "" for one stage, else the stage name or stage-N; buildx puts the platform first. */
export function stagePrefix(run: BuildSession, stage: Stage): string {
  const name = run.staged.stages.length === 1 ? "" : `${stage.name ?? `stage-${stage.index}`} `;
  return run.platformLabel ? `${run.platformLabel} ${name}` : name;
}

/** Progress node ids are unique per build: a multi-platform build's sessions prefix theirs with the platform. */
export function nodePrefix(run: BuildSession): string {
  return run.platformLabel ? `${run.platformLabel}:` : "";
}

/** How one cacheable step (FROM's layers aside: RUN, COPY, ADD, WORKDIR) went. */
export interface StepReport {
  node: string;
  name: string;
  stage: number;
  cached: boolean;
  durationMs: number;
  key: string;
  /** Why it missed (empty for hits). */
  reasons: string[];
  /** The platform of the build it belongs to (multi-platform builds only). */
  platform?: string;
  /** Run by another platform's build of this same multi-platform build (same key), not by this one. */
  shared?: boolean;
}
