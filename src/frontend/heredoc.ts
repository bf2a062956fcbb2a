// Heredoc markers (`<<EOF`, `<<-"EOF"`, `3<<'EOF'`, `<<E"O"F`) found as BuildKit's parser finds them: the line is
// split into shell words (quotes, escapes and unset `$VARS` kept as written), and each word that is `[fd]<<[-]WORD`
// is lexed again to get the delimiter. Quoting any part of WORD turns expansion of the body off.
import { DockerfileParseError, TsbuildError } from "../errors.js";
import { lexWords } from "./expand.js";
import type { SourceRange } from "./types.js";

/** A heredoc marker on an instruction line, before its body is read. */
export interface HeredocMarker {
  /** The delimiter with quotes removed: the body ends at a line equal to it. */
  name: string;
  /** False when any part of the delimiter was quoted. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the body and the closing line. */
  chomp: boolean;
  /** The file descriptor written before `<<`, if any. */
  fd?: number;
}

// BuildKit's reHeredoc; Go's `\s` is [\t\n\f\r ].
const MARKER = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;
// Heredoc lexing always uses a backslash, whatever `# escape=` says (BuildKit's shell.NewLex('\\')).
const ESCAPE = "\\";

function quoteCount(s: string): number {
  let n = 0;
  for (const c of s) if (c === "'" || c === '"') n++;
  return n;
}

/**
 * The marker a single word stands for (BuildKit's ParseHeredoc), or undefined when it is not one: `<<`, `<<<EOF`,
 * `<<""`, `<<EOF sh`. Throws BAD_HEREDOC when the delimiter does not lex (`<<'EOF`).
 */
export function parseHeredocWord(word: string, range?: SourceRange): HeredocMarker | undefined {
  const m = MARKER.exec(word);
  if (!m) return undefined;
  const rest = m[3] as string;
  if (rest === "") return undefined;
  let words: string[];
  let raw: string[];
  try {
    words = lexWords(rest, ESCAPE, { skipUnsetEnv: true });
    if (words.length !== 1) return undefined;
    raw = lexWords(rest, ESCAPE, { skipUnsetEnv: true, rawQuotes: true });
  } catch (e) {
    if (!(e instanceof TsbuildError)) throw e;
    throw new DockerfileParseError("BAD_HEREDOC", `invalid heredoc ${JSON.stringify(word)}: ${e.message}`, range ? { range } : {});
  }
  const name = words[0] as string;
  // An escaped quote stays in both results; only the quotes that quoted something differ.
  const marker: HeredocMarker = { name, expand: quoteCount(name) === quoteCount(raw[0] ?? ""), chomp: m[2] === "-" };
  if (m[1] !== "") marker.fd = Number(m[1]);
  return marker;
}

/** All markers on a logical line, in order (BuildKit's heredocsFromLine). A line that does not lex has none. */
export function heredocMarkers(line: string, range?: SourceRange): HeredocMarker[] {
  let words: string[];
  try {
    words = lexWords(line, ESCAPE, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
  } catch (e) {
    if (!(e instanceof TsbuildError)) throw e;
    return [];
  }
  const out: HeredocMarker[] = [];
  for (const w of words) {
    const marker = parseHeredocWord(w, range);
    if (marker) out.push(marker);
  }
  return out;
}

/** Whether a word is a heredoc marker, a malformed one counting as none (BuildKit's MustParseHeredoc). */
export function isHeredocWord(word: string): boolean {
  try {
    return parseHeredocWord(word) !== undefined;
  } catch (e) {
    if (e instanceof TsbuildError) return false;
    throw e;
  }
}
