// Text helpers for the CLI: Docker-style sizes, relative times, aligned tables, code frames.
import { readFileSync, statSync } from "node:fs";
import type { SourceRange } from "../frontend/types.js";

/** Docker's HumanSize: SI units, 3 significant digits (e.g. 1.23MB, 987B). */
export function humanSize(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

/** "2 minutes ago", like Docker's HumanDuration. */
export function timeAgo(iso: string | undefined, now = Date.now()): string {
  if (!iso) return "N/A";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "N/A";
  const s = Math.max(0, Math.round((now - t) / 1000));
  const pick = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"} ago`;
  if (s < 1) return "Less than a second ago";
  if (s < 60) return pick(s, "second");
  if (s < 3600) return pick(Math.round(s / 60), "minute");
  if (s < 48 * 3600) return pick(Math.round(s / 3600), "hour");
  if (s < 14 * 86400) return pick(Math.round(s / 86400), "day");
  if (s < 60 * 86400) return pick(Math.round(s / (7 * 86400)), "week");
  if (s < 2 * 365 * 86400) return pick(Math.round(s / (30 * 86400)), "month");
  return pick(Math.round(s / (365 * 86400)), "year");
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3)))
      .join("")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

export function truncate(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + "…";
}

/** A few lines of the source around the range with a caret under the column; empty if the file can't be read. */
export function codeFrame(range: SourceRange, readSource: (file: string) => string | undefined = readTextOrUndefined): string {
  const text = readSource(range.file);
  if (text === undefined) return "";
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const first = Math.max(1, range.start.line - 2);
  const last = Math.min(lines.length, Math.max(range.start.line, range.end.line) + 1);
  const width = String(last).length;
  const out: string[] = [];
  for (let n = first; n <= last; n++) {
    const marker = n >= range.start.line && n <= range.end.line ? ">" : " ";
    out.push(`${marker} ${String(n).padStart(width)} | ${lines[n - 1] ?? ""}`);
    if (n === range.start.line) out.push(`  ${" ".repeat(width)} | ${" ".repeat(Math.max(0, range.start.column - 1))}^`);
  }
  return out.join("\n");
}

export function readTextOrUndefined(file: string): string | undefined {
  try {
    // Only a regular file of sane size: a code frame is never worth a hang on a FIFO or a huge read.
    const st = statSync(file);
    if (!st.isFile() || st.size > 10 * 1024 * 1024) return undefined;
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}
