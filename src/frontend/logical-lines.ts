// Dockerfile text → parser directives + logical lines: continuations joined with the escape char, comments and
// blank lines dropped (the comment lines just above a line are kept with it, for descriptions), heredoc bodies
// collected. Positions map every character back to its physical line/column.
import { DockerfileParseError } from "../errors.js";
import type { Directives, Heredoc, Position, SourceRange, Warning } from "./types.js";
import type { HeredocMarker } from "./heredoc.js";

export const MAX_LINE_BYTES = 65_535;

interface Segment {
  offset: number;
  line: number;
  column: number;
}

export interface LogicalLine {
  /** Joined text (continuations removed), leading/trailing blanks trimmed. */
  text: string;
  /** The physical lines it came from, joined with newlines (for `original`). */
  original: string;
  heredocs: Heredoc[];
  /**
   * The comments above this line since the previous one (BuildKit's PrevComment): text after `#`, trimmed; blank
   * lines do not end the run, an empty `#` line does. Where `--call=outline|targets` find descriptions.
   */
  comments: string[];
  range: SourceRange;
  /** Position of an offset in `text`. */
  positionOf(offset: number): Position;
}

export interface LogicalLines {
  directives: Directives;
  lines: LogicalLine[];
  warnings: Warning[];
}

const DIRECTIVE = /^#[ \t]*([A-Za-z][A-Za-z0-9_-]*)[ \t]*=[ \t]*(.*?)[ \t]*$/;
const KNOWN_DIRECTIVES = new Set(["syntax", "escape", "check"]);

function rangeOf(file: string, startLine: number, startCol: number, endLine: number, endCol: number): SourceRange {
  return { file, start: { line: startLine, column: startCol }, end: { line: endLine, column: endCol } };
}

/**
 * The heredoc markers of a logical line whose body lines follow it. Which instructions may have heredocs (RUN, COPY,
 * ADD, not in exec form) is the instruction parser's business, so the caller decides.
 */
export type HeredocMarkersOf = (line: string, range: SourceRange) => HeredocMarker[];

export function splitLogicalLines(source: string, file: string, heredocMarkersOf: HeredocMarkersOf = () => []): LogicalLines {
  const text = source.startsWith("\uFEFF") ? source.slice(1) : source;
  const physical = text.split(/\r?\n/);
  if (physical.length > 0 && physical[physical.length - 1] === "") physical.pop();
  for (let i = 0; i < physical.length; i++) {
    const l = physical[i] as string;
    if (l.length > MAX_LINE_BYTES / 4 && Buffer.byteLength(l) > MAX_LINE_BYTES)
      throw new DockerfileParseError("LINE_TOO_LONG", `line ${i + 1} is longer than ${MAX_LINE_BYTES} bytes`, {
        range: rangeOf(file, i + 1, 1, i + 1, 1),
        hint: "split it with line continuations",
      });
  }

  const { directives, next } = readDirectives(physical, file);
  const escape = directives.escape;
  const warnings: Warning[] = [];
  const lines: LogicalLine[] = [];
  // BuildKit's rule (parser.go, docker/for-win#5254): a trailing escape continues the line only after a character
  // that is not an escape, or alone on its line — so `\\` ends the line, and (as in BuildKit) so does `\\\`.
  const e = escape === "`" ? "`" : "\\\\";
  const continuation = new RegExp(`(?:([^${e}])${e}|^${e})[ \\t]*$`);

  // Directive lines are comments too, as in BuildKit's parser.
  let comments: string[] = physical.slice(0, next).map(commentText);
  let i = next;
  while (i < physical.length) {
    const first = physical[i] as string;
    if (/^[ \t]*#/.test(first)) {
      const c = commentText(first);
      if (c === "") comments = [];
      else comments.push(c);
      i++;
      continue;
    }
    if (/^[ \t]*$/.test(first)) {
      i++;
      continue;
    }
    const startLine = i + 1;
    let joined = "";
    let original = "";
    const segments: Segment[] = [];
    let lineNo = i;
    let emptyContinuation: number | undefined;
    for (;;) {
      const raw = physical[lineNo] as string;
      original += (original ? "\n" : "") + raw;
      const m = continuation.exec(raw);
      const body = m ? raw.slice(0, m.index + (m[1] ?? "").length) : raw;
      segments.push({ offset: joined.length, line: lineNo + 1, column: 1 });
      joined += body;
      lineNo++;
      if (!m) break;
      // Inside a continuation: comments vanish, empty lines vanish with a warning (BuildKit's NoEmptyContinuation).
      while (lineNo < physical.length) {
        const nxt = physical[lineNo] as string;
        if (/^[ \t]*#/.test(nxt)) {
          original += "\n" + nxt;
          lineNo++;
        } else if (/^[ \t]*$/.test(nxt)) {
          emptyContinuation ??= lineNo + 1;
          original += "\n" + nxt;
          lineNo++;
        } else break;
      }
      if (lineNo >= physical.length) break; // continuation at end of file
    }
    if (emptyContinuation !== undefined)
      warnings.push({
        code: "NoEmptyContinuation",
        message: "Empty continuation line found in: " + joined.trim().slice(0, 60),
        range: rangeOf(file, emptyContinuation, 1, emptyContinuation, 1),
      });
    const lead = joined.length - joined.trimStart().length;
    const trimmed = joined.trim();
    const endLine = lineNo;
    const positionOf = (offset: number): Position => {
      const o = offset + lead;
      let seg = segments[0] as Segment;
      for (const s of segments) if (s.offset <= o) seg = s;
      return { line: seg.line, column: seg.column + (o - seg.offset) };
    };
    const startPos = positionOf(0);
    const lastPhysical = physical[endLine - 1] ?? "";
    // Heredoc bodies follow the logical line, one after the other in marker order.
    const heredocs: Heredoc[] = [];
    const lineRange = rangeOf(file, startPos.line, startPos.column, endLine, lastPhysical.length + 1);
    for (const marker of trimmed.includes("<<") ? heredocMarkersOf(trimmed, lineRange) : []) {
      const { name, chomp } = marker;
      const body: string[] = [];
      let found = false;
      while (lineNo < physical.length) {
        const l = physical[lineNo] as string;
        lineNo++;
        original += "\n" + l;
        if ((chomp ? l.replace(/^\t+/, "") : l) === name) {
          found = true;
          break;
        }
        body.push(chomp ? l.replace(/^\t+/, "") : l);
      }
      if (!found)
        throw new DockerfileParseError("UNTERMINATED_HEREDOC", `heredoc <<${name} is never terminated: expected a line "${name}"`, {
          range: rangeOf(file, startLine, startPos.column, lineNo, 1),
          hint: `end the heredoc with a line containing only ${name}`,
        });
      const h: Heredoc = { name, content: body.length ? body.join("\n") + "\n" : "", expand: marker.expand, chomp };
      if (marker.fd !== undefined) h.fd = marker.fd;
      heredocs.push(h);
    }
    lines.push({
      text: trimmed,
      original,
      heredocs,
      comments,
      range: lineRange,
      positionOf,
    });
    comments = [];
    i = lineNo;
  }
  return { directives, lines, warnings };
}

/** A comment line's text as BuildKit keeps it: the first character (the `#` of an unindented line) dropped, trimmed. */
function commentText(line: string): string {
  return line.slice(1).trim();
}

function readDirectives(physical: string[], file: string): { directives: Directives; next: number } {
  const directives: Directives = { escape: "\\" };
  const seen = new Set<string>();
  let i = 0;
  for (; i < physical.length; i++) {
    const m = DIRECTIVE.exec(physical[i] as string);
    if (!m) break;
    const key = (m[1] as string).toLowerCase();
    const value = m[2] as string;
    if (!KNOWN_DIRECTIVES.has(key)) break; // an unknown directive is a comment, and ends the directive block
    const range = rangeOf(file, i + 1, 1, i + 1, (physical[i] as string).length + 1);
    if (seen.has(key))
      throw new DockerfileParseError("DUPLICATE_DIRECTIVE", `only one ${key} parser directive can be used`, {
        range,
        hint: `remove the second "# ${key}=" line`,
      });
    seen.add(key);
    if (key === "escape") {
      if (value !== "\\" && value !== "`")
        throw new DockerfileParseError("INVALID_ESCAPE", `invalid escape token ${JSON.stringify(value)} does not validate`, {
          range,
          hint: "use # escape=\\ or # escape=`",
        });
      directives.escape = value;
    } else if (key === "syntax") directives.syntax = value;
    else directives.check = value;
  }
  return { directives, next: i };
}
