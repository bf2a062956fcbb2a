// RUN: builds the process spec from the stage's config (shell, env, user, workdir, network), runs it in a
// snapshot over the stage rootfs, and reports output to progress; a failure names the exit code and last output lines.
import { mkdir, rm, writeFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import { BuildError } from "../errors.js";
import { createLineBuffer } from "../progress/line-buffer.js";
import type { Heredoc, SourceRange } from "../frontend/types.js";
import { isHeredocWord } from "../frontend/heredoc.js";
import type { Executor, ProcessSpec, BindMount } from "../executor/types.js";
import { lookupUser } from "../executor/user-lookup.js";
import { runStep } from "./run-step.js";
import type { Snapshotter } from "../snapshot/snapshotter.js";
import type { LayerEntry } from "../layer/types.js";
import type { ProgressSink } from "../progress/events.js";
import { argOverEnv, DEFAULT_SHELL, expansionEnv, type StageState } from "./stage-state.js";
import { envKey, normalizeEnvList } from "../image/env.js";
import { PROXY_ARGS } from "./build-session.js";

export interface RunInstructionInput {
  json: boolean;
  /** Exec form: argv. Shell form: [command line as written]. */
  args: string[];
  heredocs: Heredoc[];
  network: "default" | "none" | "host";
  /** RUN --security=insecure (already checked against the security.insecure entitlement); default sandbox. */
  security?: "sandbox" | "insecure";
  /** --add-host entries for /etc/hosts. */
  extraHosts?: { host: string; ip: string }[];
  /** KEY=VALUE pairs added when neither ENV nor ARG defines them (proxy build args). */
  extraEnv?: string[];
  /** RUN --mount targets (cache, bind, tmpfs, secret files), prepared by run-mounts.ts. */
  mounts?: BindMount[];
  /** Secrets exposed as variables: last, so they win; never logged or recorded. */
  secretEnv?: string[];
}

export interface RunContext {
  rootfs: string;
  scratch: string;
  executor: Executor;
  snapshotter: Snapshotter;
  progress: ProgressSink;
  node: string;
  /** SOURCE_DATE_EPOCH: clamp mtimes in the layer; absent, files keep the times RUN gave them. */
  epoch?: number;
  signal: AbortSignal;
  range: SourceRange;
}

/** Output lines a RunFailedError keeps. */
const TAIL_LINES = 10;

/** A RUN whose process exited non-zero; `lastOutput` holds its last output lines for callers without a progress view. */
export class RunFailedError extends BuildError {
  readonly lastOutput: readonly string[];
  constructor(message: string, lastOutput: readonly string[], range: SourceRange) {
    super("RUN_FAILED", message, { range });
    this.lastOutput = [...lastOutput];
  }
}

/** The argv and any script files a RUN needs. Heredocs follow BuildKit: a lone heredoc is the script; otherwise the bodies go to the shell. */
export function runArgv(state: StageState, input: RunInstructionInput): { argv: string[]; script?: { name: string; content: string } } {
  if (input.json) return { argv: input.args };
  const shell = state.config.config.Shell ?? DEFAULT_SHELL;
  const command = input.args.join(" ");
  const first = input.heredocs[0];
  // BuildKit's dispatchRun: the command is a lone heredoc marker when the whole of it parses as one.
  if (first && input.heredocs.length === 1 && isHeredocWord(command.trim())) {
    if (first.content.startsWith("#!")) return { argv: [`/dev/pipes/${first.name}`], script: { name: first.name, content: first.content } };
    return { argv: [...shell, first.content] };
  }
  if (input.heredocs.length === 0) return { argv: [...shell, command] };
  const bodies = input.heredocs.map((h) => `${h.content}${h.content.endsWith("\n") || h.content === "" ? "" : "\n"}${h.name}`);
  return { argv: [...shell, `${command}\n${bodies.join("\n")}`] };
}

/** ENV wins over ARG of the same name; ARG values are exported to RUN as Docker does. */
export function runEnv(state: StageState, extra: string[] = []): string[] {
  // A bare `KEY` in an image's Env is `KEY=` (BuildKit's reading); it used to lose its last letter here.
  const env = normalizeEnvList(state.config.config.Env);
  const defined = new Set(env.map(envKey));
  for (const [k, v] of state.args) {
    if (v === undefined) continue;
    if (!defined.has(k)) {
      env.push(`${k}=${v}`);
      defined.add(k);
    } else if (argOverEnv(state, k)) env[env.findIndex((kv) => envKey(kv) === k)] = `${k}=${v}`;
  }
  // BuildKit appends its proxy env after ENV and ARG, and containerd's WithEnv lets a later entry replace an earlier
  // one: `--build-arg HTTP_PROXY=x` beats `ARG http_proxy=y` and `ENV http_proxy=y`.
  const extraKeys = new Set(extra.map(envKey));
  return [...env.filter((kv) => !extraKeys.has(envKey(kv))), ...extra];
}

/**
 * The `|N K=V …` prefix BuildKit puts before a RUN's command in history: every ARG declared in the stage, in
 * declaration order, with the value the RUN sees (ENV wins; an ARG without a value shows as `K=`).
 */
export function runHistoryArgs(state: StageState): string {
  if (state.args.size === 0) return "";
  const env = expansionEnv(state);
  return `|${state.args.size} ${[...state.args.keys()].map((k) => `${k}=${env.get(k) ?? ""}`).join(" ")} `;
}

/**
 * Proxy build args reach RUN without an ARG line, in both spellings (BuildKit's llb.ProxyEnv): `--build-arg
 * http_proxy=X` gives RUN http_proxy=X and HTTP_PROXY=X; a spelling given explicitly keeps its own value.
 */
export function proxyEnv(buildArgs: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const upper of PROXY_ARGS.filter((n) => n === n.toUpperCase())) {
    const lower = upper.toLowerCase();
    const value = buildArgs.get(lower) ?? buildArgs.get(upper);
    if (value === undefined) continue;
    out.push(`${upper}=${buildArgs.get(upper) ?? value}`, `${lower}=${value}`);
  }
  return out;
}

export async function executeRun(state: StageState, input: RunInstructionInput, ctx: RunContext): Promise<LayerEntry[]> {
  const { argv, script } = runArgv(state, input);
  // No USER: root, whose HOME still comes from /etc/passwd (runc's rule), with no supplementary groups (BuildKit).
  const user = state.config.config.User
    ? await lookupUser(ctx.rootfs, state.config.config.User)
    : {
        uid: 0,
        gid: 0,
        ...(await lookupUser(ctx.rootfs, "0").then(
          (u) => (u.home ? { home: u.home } : {}),
          () => ({}),
        )),
      };
  const env = [...runEnv(state, input.extraEnv), ...(input.secretEnv ?? [])];
  // HOME as runc sets it when the image's ENV has none: the user's passwd home, else "/" (crun left it empty).
  if (!env.some((e) => envKey(e) === "HOME")) env.push(`HOME=${user.home ?? "/"}`);
  const extraMounts: BindMount[] = [...(input.mounts ?? [])];
  await mkdir(ctx.scratch, { recursive: true });
  const snapDir = join(ctx.scratch, "snap");
  await mkdir(snapDir);
  if (script) {
    const file = join(ctx.scratch, "script");
    await writeFile(file, script.content);
    await chmod(file, 0o755);
    extraMounts.push({ source: file, destination: `/dev/pipes/${script.name}`, readonly: true });
  }
  const spec: ProcessSpec = {
    args: argv,
    env,
    cwd: state.config.config.WorkingDir || "/",
    uid: user.uid,
    gid: user.gid,
    ...(user.additionalGids ? { additionalGids: user.additionalGids } : {}),
    network: input.network,
    ...(input.security === "insecure" ? { security: "insecure" as const } : {}),
    ...(input.extraHosts?.length ? { extraHosts: input.extraHosts } : {}),
    ...(extraMounts.length ? { extraMounts } : {}),
  };
  // The last lines, whole (chunks split lines), for the error a library caller gets; renderers show the output.
  const tail: string[] = [];
  const lines = createLineBuffer();
  const keep = (stream: "stdout" | "stderr", chunk: Uint8Array | undefined) => {
    for (const line of chunk ? lines.push(ctx.node, stream, chunk) : lines.flush(ctx.node)) if (line.trim() !== "") tail.push(line);
    if (tail.length > TAIL_LINES) tail.splice(0, tail.length - TAIL_LINES);
  };
  try {
    const result = await runStep({
      rootfs: ctx.rootfs,
      scratch: snapDir,
      executor: ctx.executor,
      spec,
      io: {
        stdout: (data) => {
          keep("stdout", data);
          ctx.progress.emit({ kind: "step-log", node: ctx.node, stream: "stdout", data });
        },
        stderr: (data) => {
          keep("stderr", data);
          ctx.progress.emit({ kind: "step-log", node: ctx.node, stream: "stderr", data });
        },
      },
      signal: ctx.signal,
      snapshotter: ctx.snapshotter,
      ...(ctx.epoch !== undefined ? { epoch: ctx.epoch } : {}),
    });
    if (result.exitCode !== 0) {
      keep("stdout", undefined);
      // The message is BuildKit's, without the output: the progress view already showed it (once).
      throw new RunFailedError(`process ${JSON.stringify(argv.join(" "))} did not complete successfully: exit code: ${result.exitCode}`, tail, ctx.range);
    }
    return result.entries;
  } finally {
    await rm(ctx.scratch, { recursive: true, force: true });
  }
}
