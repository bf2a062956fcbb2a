// BuildKit-style history lines (`created_by`) for each instruction, so `tsbuild history` reads like `docker history`.
import type { HealthConfig } from "../image/types.js";

export const HISTORY_COMMENT = "buildkit.dockerfile.v0";

/** Go's %q of a []string: ["a" "b"]. BuildKit formats CMD/ENTRYPOINT this way. */
export function goQuoteList(items: readonly string[]): string {
  return `[${items.map((s) => JSON.stringify(s)).join(" ")}]`;
}

/** Go's %v of a []string: [a b]. */
export function goList(items: readonly string[]): string {
  return `[${items.join(" ")}]`;
}

/** Go's %v of a map[string]struct{}: map[80/tcp:{}] (keys sorted, as Go prints maps). */
export function goSetMap(keys: readonly string[]): string {
  return `map[${[...keys]
    .sort()
    .map((k) => `${k}:{}`)
    .join(" ")}]`;
}

/** Go's time.Duration String(): 0s, 1.5s, 1m30s, 500ms, 2h0m0s. */
export function goDuration(ns: number): string {
  if (ns === 0) return "0s";
  const neg = ns < 0 ? "-" : "";
  let n = Math.abs(ns);
  if (n < 1e9) {
    const [unit, div] = n < 1e3 ? ["ns", 1] : n < 1e6 ? ["µs", 1e3] : ["ms", 1e6];
    return `${neg}${trimFraction(n / (div as number))}${unit}`;
  }
  const h = Math.floor(n / 3.6e12);
  n -= h * 3.6e12;
  const m = Math.floor(n / 6e10);
  n -= m * 6e10;
  const s = `${trimFraction(n / 1e9)}s`;
  return `${neg}${h ? `${h}h${m}m` : m ? `${m}m` : ""}${s}`;
}

function trimFraction(v: number): string {
  return String(Number(v.toFixed(9)));
}

/** Go's %q of an int: a quoted rune ('\x02', 'A'). */
export function goQuoteRune(n: number): string {
  const named: Record<number, string> = { 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 39: "\\'", 92: "\\\\" };
  if (named[n]) return `'${named[n]}'`;
  if (n < 32 || n === 127) return `'\\x${n.toString(16).padStart(2, "0")}'`;
  return `'${String.fromCodePoint(n)}'`;
}

/**
 * BuildKit's HEALTHCHECK history line, Go's %q of its HealthConfig pointer:
 * `HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "3s" "0s" "0s" '\x02'}` (Test, Interval, Timeout, StartPeriod, StartInterval, Retries).
 */
export function healthcheckHistory(h: HealthConfig): string {
  const d = (v: number | undefined) => JSON.stringify(goDuration(v ?? 0));
  return `HEALTHCHECK &{${goQuoteList(h.Test ?? [])} ${d(h.Interval)} ${d(h.Timeout)} ${d(h.StartPeriod)} ${d(h.StartInterval)} ${goQuoteRune(h.Retries ?? 0)}}`;
}
