// The state a stage carries from step to step: the image config being built, its layers, and variables in scope.
import type { ImageConfig, Digest } from "../image/types.js";
import { envMap, lookupEnv, setEnvEntry } from "../image/env.js";

export interface LayerRef {
  diffId: Digest;
  size: number;
}

export interface StageState {
  config: ImageConfig;
  layers: LayerRef[];
  /**
   * ARGs declared in this stage, in declaration order; undefined for an ARG with no value (BuildKit leaves it unset:
   * not exported to RUN, `${X-default}` sees it unset, yet RUN's history lists it as `X=`).
   */
  args: Map<string, string | undefined>;
  /** CMD set by an instruction of this stage (ENTRYPOINT then does not reset it). */
  cmdSet: boolean;
  /** Cache key of the filesystem so far (base image, then every layer step); config-only steps leave it alone. */
  key: string;
}

export { DEFAULT_PATH } from "../image/env.js";
export const DEFAULT_SHELL = ["/bin/sh", "-c"];

/** Variables visible to expansion: ARGs, overridden by ENV (Docker: ENV always wins over ARG of the same name). */
export function expansionEnv(state: StageState): Map<string, string> {
  const env = new Map<string, string>();
  for (const [k, v] of state.args) if (v !== undefined) env.set(k, v);
  for (const [k, v] of envMap(state.config.config.Env)) env.set(k, v);
  return env;
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
