// The state a stage carries from step to step: the image config being built, its layers, and variables in scope.
import type { ImageConfig, Digest } from "../image/types.js";
import { envMap, lookupEnv, setEnvEntry } from "../image/env.js";

export interface LayerRef {
  diffId: Digest;
  size: number;
  /** The layer the same step made in the build before, when it differs: a kept layer dir may be a delta over it. */
  like?: Digest;
}

export interface StageState {
  config: ImageConfig;
  layers: LayerRef[];
  /**
   * ARGs declared in this stage, in declaration order; undefined for an ARG with no value (BuildKit leaves it unset:
   * not exported to RUN, `${X-default}` sees it unset, yet RUN's history lists it as `X=`).
   */
  args: Map<string, string | undefined>;
  /**
   * ARGs with a value declared after an ENV of the same name: BuildKit adds an ARG's value to the state's env when it
   * is declared, so there the ARG wins for RUN and expansion until the next ENV of that name (the image keeps the ENV).
   */
  argsOverEnv?: Set<string>;
  /** CMD set by an instruction of this stage (ENTRYPOINT then does not reset it). */
  cmdSet: boolean;
  /** Cache key of the filesystem so far (base image, then every layer step); config-only steps leave it alone. */
  key: string;
}

export { DEFAULT_PATH } from "../image/env.js";
export const DEFAULT_SHELL = ["/bin/sh", "-c"];

/** Variables visible to expansion: ARGs, overridden by ENV, itself overridden by an ARG declared after it (BuildKit). */
export function expansionEnv(state: StageState): Map<string, string> {
  const env = new Map<string, string>();
  for (const [k, v] of state.args) if (v !== undefined) env.set(k, v);
  for (const [k, v] of envMap(state.config.config.Env)) env.set(k, v);
  for (const k of state.argsOverEnv ?? []) {
    const v = state.args.get(k);
    if (v !== undefined) env.set(k, v);
  }
  return env;
}

/** Whether the ARG `key` is what a RUN sees rather than an ENV of the same name (declared after it). */
export function argOverEnv(state: StageState, key: string): boolean {
  return state.argsOverEnv?.has(key) ?? false;
}

export function getEnv(config: ImageConfig, key: string): string | undefined {
  return lookupEnv(config.config.Env, key);
}

/** Set or replace one environment variable, keeping the order of first definition (as Docker does). */
export function setEnv(env: string[] | undefined, key: string, value: string): string[] {
  return setEnvEntry(env, key, value);
}

export function cloneConfig(c: ImageConfig): ImageConfig {
  return structuredClone(c);
}
