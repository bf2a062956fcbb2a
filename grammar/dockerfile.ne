# One logical Dockerfile line: KEYWORD [--flag[=value] ...] [--] [rest]. Directives, continuations and heredoc bodies
# are resolved before this grammar sees a line (see src/frontend/logical-lines.ts), so a static moo lexer suffices.
# Lines arrive trimmed. A flag can only follow the keyword or another flag; the rest starts at the first plain word.
@preprocessor typescript
@{%
import moo from "moo";
import type { Token } from "moo";

// Lexer states follow the line's shape, so the rest of the line is ONE token (no per-word grammar work, which keeps
// long RUN lines linear). Flag values may be quoted ("a b" or 'a b'); an unclosed quote runs to the end of the line.
// Every character but a newline (logical lines never hold one) is covered by some rule in every state.
const FLAG = /--(?:[^ \t\v\f\r\n"'\\]|\\[^\n]?|"(?:[^"\\\n]|\\[^\n]?)*"?|'[^'\n]*'?)+/;
const lexer = moo.states({
  main: {
    ws: /[ \t\v\f\r]+/,
    keyword: { match: /[^ \t\v\f\r\n]+/, next: "flags" },
  },
  flags: {
    ws: /[ \t\v\f\r]+/,
    // A bare `--` ends the flags, as in BuildKit's extractBuilderFlags.
    endflags: { match: /--(?=[ \t\v\f\r]|$)/, next: "rest" },
    // All consecutive flags form one token, split by FLAG below: nearley costs tens of µs per token and grows
    // super-linearly on thousands of them, while a regex split is linear.
    flags: new RegExp(`${FLAG.source}(?:[ \\t\\v\\f\\r]+${FLAG.source})*`),
    rest: { match: /[^ \t\v\f\r\n][^\n]*/, next: "rest" },
  },
  rest: {
    ws: /[ \t\v\f\r]+/,
    rest: /[^ \t\v\f\r\n][^\n]*/,
  },
});

export interface LineAst {
  keyword: Token;
  flags: Token[];
  /** The instruction's arguments: one token running from the first non-flag word to the end of the line. */
  rest?: Token;
}

/** Split a run of flags into one token per flag, with offsets in the line. */
function splitFlags(run: Token | null): Token[] {
  if (!run) return [];
  const out: Token[] = [];
  const re = new RegExp(FLAG.source, "g");
  for (let m = re.exec(run.text); m; m = re.exec(run.text))
    out.push({ ...run, type: "flag", value: m[0], text: m[0], offset: run.offset + m.index, col: run.col + m.index });
  return out;
}
%}
@lexer lexer

line -> %keyword flagrun tail {% (d): LineAst => (d[2] ? { keyword: d[0] as Token, flags: splitFlags(d[1] as Token | null), rest: d[2] as Token } : { keyword: d[0] as Token, flags: splitFlags(d[1] as Token | null) }) %}

flagrun -> null {% (): Token | null => null %}
  | %ws %flags {% (d): Token => d[1] as Token %}

tail -> null {% (): Token | null => null %}
  | %ws %rest {% (d): Token => d[1] as Token %}
  | %ws %endflags {% (): Token | null => null %}
  | %ws %endflags %ws %rest {% (d): Token => d[3] as Token %}
