// `-e` and `--env-file` as the docker CLI reads them: KEY=VALUE as given, a bare KEY takes the value from tsbuild's
// own environment (and stays bare, which unsets it, when that lacks it); env files hold one such entry per line.
import { resolve } from "node:path";
import { UsageError } from "../errors.js";
import { readRegularFile } from "../fs/read-input.js";

/** One -e value or env-file line: KEY=VALUE as is; KEY from `env` when set there, else bare KEY. */
export function envEntry(raw: string, env: NodeJS.ProcessEnv, where: string): string {
  const eq = raw.indexOf("=");
  const key = eq < 0 ? raw : raw.slice(0, eq);
  if (key === "") throw new UsageError("BAD_ENV", `${where}: no variable name in ${JSON.stringify(raw)}`, { hint: "write KEY=VALUE or KEY" });
  if (/\s/.test(key))
    throw new UsageError("BAD_ENV", `${where}: variable ${JSON.stringify(key)} contains whitespace`, { hint: "write KEY=VALUE, no spaces in KEY" });
  if (eq >= 0) return raw;
  const value = env[key];
  return value === undefined ? key : `${key}=${value}`;
}

/**
 * docker's env-file format: leading whitespace ignored, blank lines and `#` lines skipped, then each line is a -e
 * value (no quoting: `A="x"` sets A to `"x"`, quotes included, as docker does).
 */
export function parseEnvFile(text: string, file: string, env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/^\s+/, "");
    if (line === "" || line.startsWith("#")) continue;
    out.push(envEntry(line, env, `--env-file ${file}:${i + 1}`));
  }
  return out;
}

/** The env entries of `--env-file` files (in order), then `-e` values: later ones win. */
export async function readEnvFlags(files: readonly string[], values: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const out: string[] = [];
  for (const f of files) {
    const text = await readRegularFile(resolve(cwd, f), { maxBytes: 4 * 1024 * 1024, what: "env file", display: f, errorClass: UsageError });
    out.push(...parseEnvFile(text, f, env));
  }
  for (const v of values) out.push(envEntry(v, env, `-e ${v}`));
  return out;
}
