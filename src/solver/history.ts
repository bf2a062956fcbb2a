// BuildKit-style history lines (`created_by`) for each instruction, so `tsbuild history` reads like `docker history`.

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
