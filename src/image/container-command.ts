// What `docker run` makes of an image's config and its command line: the argv (ENTRYPOINT and CMD, --entrypoint and
// the arguments after IMAGE, as moby's merge() and mergeAndVerifyConfig() combine them) and the environment (the
// daemon's defaults, then the image's Env, then -e/--env-file, as ReplaceOrAppendEnvValues layers them).
import { UsageError } from "../errors.js";
import { DEFAULT_PATH, envKey, normalizeEnvList } from "./env.js";
import type { ImageConfig } from "./types.js";

export interface CommandOverrides {
  /** --entrypoint: replaces the image's ENTRYPOINT and drops its CMD; "" resets ENTRYPOINT to nothing. */
  entrypoint?: string;
  /** The arguments after IMAGE: replace CMD. */
  args?: readonly string[];
}

/**
 * The process's argv. Without --entrypoint: ENTRYPOINT + (args, or CMD when there are none). With it: [entrypoint] +
 * args, CMD never inherited (also for `--entrypoint ""`, as docker does). Shell forms are stored as ["/bin/sh", "-c",
 * "..."] already, so both forms combine the same way.
 */
export function containerArgv(config: ImageConfig["config"], image: string, o: CommandOverrides = {}): string[] {
  const args = [...(o.args ?? [])];
  let argv: string[];
  if (o.entrypoint === undefined) argv = [...(config?.Entrypoint ?? []), ...(args.length > 0 ? args : (config?.Cmd ?? []))];
  else argv = [...(o.entrypoint === "" ? [] : [o.entrypoint]), ...args];
  if (argv.length === 0)
    throw new UsageError(
      "NO_COMMAND",
      `no command specified: image ${image} has no ENTRYPOINT or CMD${o.entrypoint === "" ? ' (--entrypoint "" reset it)' : ""}, and none was given after the image`,
      { hint: `give one: tsbuild run ${image} COMMAND [ARG...]` },
    );
  return argv;
}

/**
 * `list` with each override applied in order (docker's ReplaceOrAppendEnvValues): KEY=VALUE replaces KEY where it
 * first appeared or is appended; a bare KEY removes it (what `-e KEY` means when KEY is not set on the host).
 */
export function overlayEnv(list: readonly string[], overrides: readonly string[]): string[] {
  let out = [...list];
  for (const o of overrides) {
    const key = envKey(o);
    if (key === "") continue;
    if (!o.includes("=")) {
      out = out.filter((e) => envKey(e) !== key);
      continue;
    }
    const i = out.findIndex((e) => envKey(e) === key);
    if (i >= 0) out[i] = o;
    else out.push(o);
  }
  return out;
}

export interface ContainerEnvOptions {
  hostname: string;
  /** -t: TERM=xterm, as docker sets. */
  tty?: boolean;
  /** -e / --env-file entries, in order (already read from files and the host's environment). */
  env?: readonly string[];
  /** The user's home directory from /etc/passwd; HOME defaults to it (else "/"), as runc and crun do. */
  home?: string;
}

/** The process environment of `docker run`: PATH, HOSTNAME (and TERM with -t), then the image's Env, then -e. */
export function containerEnv(config: ImageConfig["config"], o: ContainerEnvOptions): string[] {
  const defaults = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${o.hostname}`, ...(o.tty ? ["TERM=xterm"] : [])];
  const env = overlayEnv(defaults, overlayEnv(normalizeEnvList(config?.Env), o.env ?? []));
  if (!env.some((e) => envKey(e) === "HOME")) env.push(`HOME=${o.home ?? "/"}`);
  return env;
}
