// An image config's Env list (`KEY=value` strings) read and written one way everywhere. An entry without `=` is
// the variable with an empty value, as BuildKit's shell.BuildEnvs and dockerfile2llb's parseKeyValue read it.

/** Docker's PATH for a process whose image sets none (builds and `docker run` alike). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** `KEY=value` → ["KEY", "value"]; `KEY` → ["KEY", ""]; only the first `=` splits (`A=b=c` → ["A", "b=c"]). */
export function parseEnvEntry(entry: string): [key: string, value: string] {
  const eq = entry.indexOf("=");
  return eq < 0 ? [entry, ""] : [entry.slice(0, eq), entry.slice(eq + 1)];
}

/** The variable an entry sets (the whole entry when it has no `=`). */
export function envKey(entry: string): string {
  return parseEnvEntry(entry)[0];
}

/**
 * The list as a map, later entries winning (as in Docker). Entries with an empty name (`=x`) are skipped: no
 * process environment can hold them, and a RUN would otherwise see a different environment than expansion does.
 */
export function envMap(list: readonly string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of list ?? []) {
    const [k, v] = parseEnvEntry(entry);
    if (k !== "") out.set(k, v);
  }
  return out;
}

/** The value of `key` in the list (the last definition), or undefined when it is not set. */
export function lookupEnv(list: readonly string[] | undefined, key: string): string | undefined {
  return envMap(list).get(key);
}

/** Set or replace one variable, keeping the order of first definition (as Docker does); a bare `KEY` is replaced too. */
export function setEnvEntry(list: readonly string[] | undefined, key: string, value: string): string[] {
  const out = [...(list ?? [])];
  const i = out.findIndex((entry) => envKey(entry) === key);
  if (i >= 0) out[i] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

/** The list in the `KEY=value` form a process receives (bare `KEY` becomes `KEY=`, empty names dropped). */
export function normalizeEnvList(list: readonly string[] | undefined): string[] {
  const out: string[] = [];
  for (const entry of list ?? []) {
    const [k, v] = parseEnvEntry(entry);
    if (k !== "") out.push(`${k}=${v}`);
  }
  return out;
}
