// The text and JSON that `build --call=outline|targets` print, byte for byte as buildx prints BuildKit's
// result.txt (subrequests outline.PrintOutline, targets.PrintTargets: Go tabwriter tables) and result.json.
import type { Outline, OutlineArg, OutlineMount, Target } from "./outline.js";
import type { SourceRange } from "./types.js";

/**
 * Go's text/tabwriter with minwidth 0, tabwidth 0, padchar ' ': every cell but a row's last is padded to its
 * column's widest cell plus `padding`; the last cell is written as is. All rows here have the same number of cells.
 */
export function tabwrite(rows: readonly (readonly string[])[], padding: number): string {
  const width = (s: string) => [...s].length;
  const widths: number[] = [];
  for (const row of rows) row.slice(0, -1).forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, width(cell))));
  return rows
    .map((row) => row.map((cell, i) => (i < row.length - 1 ? cell + " ".repeat((widths[i] as number) + padding - width(cell)) : cell)).join("") + "\n")
    .join("");
}

/** PrintOutline: a TARGET block when the target has a name or description, then BUILD ARG, SECRET and SSH tables. */
export function formatOutline(o: Outline): string {
  let out = "";
  if (o.name !== undefined || o.description !== undefined) {
    const rows = [["TARGET:", o.name ?? "(default)"]];
    if (o.description !== undefined) rows.push(["DESCRIPTION:", o.description]);
    out += tabwrite(rows, 1) + "\n";
  }
  if (o.args.length > 0) out += tabwrite([["BUILD ARG", "VALUE", "DESCRIPTION"], ...o.args.map((a) => [a.name, a.value ?? "", a.description])], 3) + "\n";
  const mounts = (title: string, list: OutlineMount[]) =>
    list.length > 0 ? tabwrite([[title, "REQUIRED"], ...list.map((m) => [m.name, m.required ? "true" : ""])], 3) + "\n" : "";
  return out + mounts("SECRET", o.secrets) + mounts("SSH", o.ssh);
}

/** PrintTargets: TARGET and DESCRIPTION; the default target is marked, an unnamed default is "(default)". */
export function formatTargets(targets: readonly Target[]): string {
  const rows = targets.map((t) => [t.name === undefined ? (t.default ? "(default)" : "") : t.default ? `${t.name} (default)` : t.name, t.description ?? ""]);
  return tabwrite([["TARGET", "DESCRIPTION"], ...rows], 1);
}

/** BuildKit's pb.Location of an instruction: its first and last line (BuildKit records no columns for these). */
function location(r: SourceRange): { ranges: { start: { line: number }; end: { line: number } }[] } {
  return { ranges: [{ start: { line: r.start.line }, end: { line: r.end.line } }] };
}

/** Go's encoding/json of BuildKit's outline.Outline: omitempty fields left out, sources as base64. */
export function outlineJson(o: Outline, source: string | Uint8Array): unknown {
  const arg = (a: OutlineArg) => ({
    name: a.name,
    ...(a.description ? { description: a.description } : {}),
    ...(a.value ? { value: a.value } : {}),
    location: location(a.range),
  });
  const mount = (m: OutlineMount) => ({ name: m.name, ...(m.required ? { required: true } : {}), location: location(m.range) });
  return {
    ...(o.name ? { name: o.name } : {}),
    ...(o.description ? { description: o.description } : {}),
    ...(o.args.length ? { args: o.args.map(arg) } : {}),
    ...(o.secrets.length ? { secrets: o.secrets.map(mount) } : {}),
    ...(o.ssh.length ? { ssh: o.ssh.map(mount) } : {}),
    sources: [Buffer.from(source).toString("base64")],
  };
}

/** Go's encoding/json of BuildKit's targets.List. */
export function targetsJson(targets: readonly Target[], source: string | Uint8Array): unknown {
  return {
    targets: targets.map((t) => ({
      ...(t.name ? { name: t.name } : {}),
      ...(t.default ? { default: true } : {}),
      ...(t.description ? { description: t.description } : {}),
      ...(t.base ? { base: t.base } : {}),
      ...(t.platform ? { platform: t.platform } : {}),
      location: location(t.range),
    })),
    sources: [Buffer.from(source).toString("base64")],
  };
}

/** json.MarshalIndent(v, "", "  ") as Go writes it: <, >, & and the line/paragraph separators escaped. */
export function goJsonIndent(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
