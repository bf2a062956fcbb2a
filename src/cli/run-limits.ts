// `--shm-size` and `--ulimit` as docker writes them (go-units' RAMInBytes and ParseUlimit): "64m", "1g", bytes;
// "nofile=1024:2048", "nproc=512", -1 or "unlimited". Bad values are usage errors naming the flag.
import { UsageError } from "../errors.js";
import { RLIMIT_NAMES, type Rlimit, type RlimitName } from "../executor/sandbox-policy.js";

const RAM_UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** Bytes for docker's --shm-size ("64m", "1g", "1.5g", "65536", "64MiB"): binary units, as RAMInBytes; 0 means the default. */
export function parseShmSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(text.trim());
  const bytes = m ? Math.floor(Number(m[1]) * (RAM_UNITS[(m[2] ?? "").toLowerCase()] as number)) : NaN;
  if (!Number.isSafeInteger(bytes))
    throw new UsageError("BAD_FLAG_VALUE", `--shm-size takes a size such as 64m, 1g or a byte count, not ${JSON.stringify(text)}`, {
      hint: "units: b, k, m, g (powers of 1024), e.g. --shm-size 256m",
    });
  return bytes === 0 ? undefined : bytes;
}

function limitValue(flag: string, text: string): number {
  if (text === "-1" || text === "unlimited") return Infinity;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n))
    throw new UsageError("BAD_FLAG_VALUE", `${flag}: ${JSON.stringify(text)} is not a whole number (or -1 / unlimited)`, {
      hint: "e.g. --ulimit nofile=1024:2048",
    });
  return n;
}

/** One `--ulimit NAME=SOFT[:HARD]`; SOFT alone sets both, as in docker. */
export function parseUlimit(v: string): Rlimit {
  const eq = v.indexOf("=");
  const name = eq < 0 ? v : v.slice(0, eq);
  const flag = `--ulimit ${v}`;
  if (eq < 0) throw new UsageError("BAD_FLAG_VALUE", `${flag}: expected NAME=SOFT[:HARD]`, { hint: "e.g. --ulimit nofile=1024:2048" });
  if (!Object.hasOwn(RLIMIT_NAMES, name))
    throw new UsageError("BAD_FLAG_VALUE", `${flag}: unknown limit ${JSON.stringify(name)}`, {
      hint: `names: ${Object.keys(RLIMIT_NAMES).join(", ")}`,
    });
  const parts = v.slice(eq + 1).split(":");
  if (parts.length > 2) throw new UsageError("BAD_FLAG_VALUE", `${flag}: too many values; expected SOFT or SOFT:HARD`);
  const soft = limitValue(flag, parts[0] as string);
  const hard = parts.length === 2 ? limitValue(flag, parts[1] as string) : soft;
  if (soft > hard)
    throw new UsageError("BAD_FLAG_VALUE", `${flag}: the soft limit must be less than or equal to the hard limit: ${soft} > ${hard}`, {
      hint: `e.g. --ulimit ${name}=${parts[1]}:${parts[1]}`,
    });
  return { name: name as RlimitName, soft, hard };
}

/** Every `--ulimit`; a name given twice keeps its last value, as docker does. */
export function parseUlimits(values: readonly string[]): Rlimit[] {
  const byName = new Map<RlimitName, Rlimit>();
  for (const v of values) {
    const r = parseUlimit(v);
    byName.delete(r.name);
    byName.set(r.name, r);
  }
  return [...byName.values()];
}
