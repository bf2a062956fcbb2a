# One logical Dockerfile line: KEYWORD [--flag[=value] ...] [rest]. Directives, continuations and heredoc bodies
# are resolved before this grammar sees a line (see src/frontend/logical-lines.ts), so a static moo lexer suffices.
# Lines arrive trimmed. A flag can only follow the keyword or another flag; the rest starts at the first plain word.
@preprocessor typescript
@{%
import moo from "moo";
import type { Token } from "moo";

// Flag values may be quoted ("a b" or 'a b'); everything else is split on blanks.
const lexer = moo.compile({
  ws: /[ \t]+/,
  flag: /--[A-Za-z][A-Za-z0-9_-]*(?:=(?:"[^"\n]*"|'[^'\n]*'|[^ \t"'\n])*)?/,
  word: /(?:"(?:\\[^\n]|[^"\\\n])*"?|'[^'\n]*'?|[^ \t"'\n])+/,
});

export interface LineAst {
  keyword: Token;
  flags: Token[];
  /** First token of the instruction's arguments, if any. */
  rest?: Token;
}
%}
@lexer lexer

line -> keyword flags rest:? {% ([keyword, flags, rest]): LineAst => (rest ? { keyword, flags, rest } : { keyword, flags }) %}
keyword -> %word {% ([t]) => t %}
flags -> null {% () => [] %}
       | flags %ws %flag {% ([fs, , f]) => [...fs, f] %}
rest -> %ws %word anys {% ([, first]) => first %}
anys -> null | anys any
any -> %word {% id %} | %flag {% id %} | %ws {% id %}
