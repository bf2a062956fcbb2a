// Source positions of the parts of a parsed instruction (flags, argument words), so errors found while decoding
// point at the exact file:line:column. Kept beside the Instruction in a WeakMap so Instruction stays plain data.
import type { Position, SourceRange, SyntaxInstruction } from "./types.js";

/** What positions are looked up for: an instruction, checked or not. */
type Located = Pick<SyntaxInstruction, "keyword" | "flags" | "args" | "range">;

export interface LineLayout {
  /** The logical line as the grammar saw it (continuations joined, trimmed); offsets below index into it. */
  text: string;
  positionOf(offset: number): Position;
  /** Offset of each raw flag in `text`. */
  flagOffsets: number[];
  /** Offset where the arguments start in `text` (`text.length` when there are none). */
  restOffset: number;
}

const layouts = new WeakMap<Located, LineLayout>();

export function recordLayout(i: Located, layout: LineLayout): void {
  layouts.set(i, layout);
}

/** Range of `length` characters at `offset` of the instruction's logical line; the whole instruction if unknown. */
export function rangeAt(i: Located, offset: number, length: number): SourceRange {
  const l = layouts.get(i);
  if (!l) return i.range;
  return { file: i.range.file, start: l.positionOf(offset), end: l.positionOf(offset + Math.max(0, length)) };
}

/** Range of the first flag named `--name` (or of flag number `name` when a number is given). */
export function flagRange(i: Located, name: string | number): SourceRange {
  const index = typeof name === "number" ? name : i.flags.findIndex((f) => f === `--${name}` || f.startsWith(`--${name}=`));
  const l = layouts.get(i);
  const offset = l?.flagOffsets[index];
  if (offset === undefined) return i.range;
  return rangeAt(i, offset, i.flags[index]?.length ?? 0);
}

/** The argument words (split on blanks, as written) with their ranges. */
export function argWordRanges(i: Located): { text: string; range: SourceRange }[] {
  const l = layouts.get(i);
  if (!l) return i.args.map((text) => ({ text, range: i.range }));
  const out: { text: string; range: SourceRange }[] = [];
  const re = /[^ \t\v\f\r]+/g;
  re.lastIndex = l.restOffset;
  for (let m = re.exec(l.text); m; m = re.exec(l.text)) out.push({ text: m[0], range: rangeAt(i, m.index, m[0].length) });
  return out;
}

/** Range just past the end of the logical line: where a missing argument would go. */
export function endRange(i: Located): SourceRange {
  const l = layouts.get(i);
  return l ? rangeAt(i, l.text.length, 0) : i.range;
}

/** The keyword as written in the file (any case). */
export function keywordAsWritten(i: Located): string {
  return layouts.get(i)?.text.slice(0, i.keyword.length) ?? i.keyword;
}
