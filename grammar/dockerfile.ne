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
const lexer = moo.states({
  main: {
    ws: /[ \t\v\f\r]+/,
    keyword: { match: /[^ \t\v\f\r\n]+/, next: "flags" },
  },
  flags: {
    ws: /[ \t\v\f\r]+/,
    // A bare `--` ends the flags, as in BuildKit's extractBuilderFlags.
    endflags: { match: /--(?=[ \t\v\f\r]|$)/, next: "rest" },
    flag: /--(?:[^ \t\v\f\r\n"'\\]|\\[^\n]?|"(?:[^"\\\n]|\\[^\n]?)*"?|'[^'\n]*'?)+/,
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

// Flags are collected in a linked list (left recursion, O(1) per flag) and flattened once.
interface FlagChain {
  prev: FlagChain | null;
  tok: Token;
}
function flagList(chain: FlagChain | null): Token[] {
  const out: Token[] = [];
  for (let c = chain; c; c = c.prev) out.push(c.tok);
  return out.reverse();
}
%}
@lexer lexer

line -> %keyword flags tail {% (d): LineAst => (d[2] ? { keyword: d[0] as Token, flags: flagList(d[1] as FlagChain | null), rest: d[2] as Token } : { keyword: d[0] as Token, flags: flagList(d[1] as FlagChain | null) }) %}

flags -> null {% (): FlagChain | null => null %}
  | flags %ws %flag {% (d): FlagChain => ({ prev: d[0] as FlagChain | null, tok: d[2] as Token }) %}

tail -> null {% (): Token | null => null %}
  | %ws %rest {% (d): Token => d[1] as Token %}
  | %ws %endflags {% (): Token | null => null %}
  | %ws %endflags %ws %rest {% (d): Token => d[3] as Token %}
