// Go `filepath.Match` on `/`-separated paths: `*`, `?`, `[...]` classes and `\` escapes.
// Patterns compile once to a RegExp; malformed patterns throw BAD_PATTERN like Go's ErrBadPattern.
import { TsbuildError } from "../errors.js";

/** A parsed pattern piece; dockerignore.ts reuses these to build its own matchers. */
export type GoPatternToken =
  | { kind: "literal"; char: string }
  /** `?`: one character other than `/`. */
  | { kind: "any" }
  /** `*`: any run of characters other than `/`. */
  | { kind: "star" }
  | { kind: "class"; negated: boolean; ranges: [lo: number, hi: number][] };

function badPattern(pattern: string, why: string): TsbuildError {
  return new TsbuildError("BAD_PATTERN", `syntax error in pattern ${JSON.stringify(pattern)}: ${why}`);
}

/**
 * Reads one class member (Go's getEsc): a character or `\`-escaped character.
 * `-` and `]` must be escaped where Go rejects them, so `[]a]` and `[a-]` are errors as in Go.
 */
function classChar(chars: string[], i: number, pattern: string): [code: number, next: number] {
  let c = chars[i];
  if (c === undefined || c === "-" || c === "]") throw badPattern(pattern, "bad character class");
  if (c === "\\") {
    i++;
    c = chars[i];
    if (c === undefined) throw badPattern(pattern, "bad escape in character class");
  }
  i++;
  // Go requires something after every member: at least the closing `]`.
  if (i >= chars.length) throw badPattern(pattern, "unterminated character class");
  return [c.codePointAt(0) ?? 0, i];
}

/** Tokenizes a Go pattern, validating all of it (Go reports ErrBadPattern for any malformed part). */
export function parseGoPattern(pattern: string): GoPatternToken[] {
  // Iterate by code point so `?` and classes see whole characters, like Go's runes.
  const chars = Array.from(pattern);
  const tokens: GoPatternToken[] = [];
  let i = 0;
  while (i < chars.length) {
    const c = chars[i] as string;
    if (c === "*") {
      tokens.push({ kind: "star" });
      i++;
    } else if (c === "?") {
      tokens.push({ kind: "any" });
      i++;
    } else if (c === "\\") {
      const next = chars[i + 1];
      if (next === undefined) throw badPattern(pattern, "trailing backslash");
      tokens.push({ kind: "literal", char: next });
      i += 2;
    } else if (c === "[") {
      i++;
      // Go's filepath.Match negates only with `^`; `[!a]` is the class {!, a} (moby agrees).
      let negated = false;
      if (chars[i] === "^") {
        negated = true;
        i++;
      }
      const ranges: [number, number][] = [];
      for (;;) {
        if (chars[i] === "]" && ranges.length > 0) {
          i++;
          break;
        }
        let lo: number;
        [lo, i] = classChar(chars, i, pattern);
        let hi = lo;
        if (chars[i] === "-") {
          [hi, i] = classChar(chars, i + 1, pattern);
        }
        ranges.push([lo, hi]);
      }
      tokens.push({ kind: "class", negated, ranges });
    } else {
      tokens.push({ kind: "literal", char: c });
      i++;
    }
  }
  return tokens;
}

/** Escapes one character for use in a `u`-flag RegExp outside a class. */
export function regexLiteral(char: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(char) ? `\\${char}` : char;
}

/** Regex source for one token (no anchors). */
export function tokenRegex(token: GoPatternToken): string {
  switch (token.kind) {
    case "literal":
      return regexLiteral(token.char);
    case "any":
      return "[^/]";
    case "star":
      return "[^/]*";
    case "class": {
      const hex = (n: number): string => `\\u{${n.toString(16)}}`;
      // A reversed range (z-a) matches nothing in Go but is a RegExp syntax error: drop it.
      const body = token.ranges
        .filter(([lo, hi]) => lo <= hi)
        .map(([lo, hi]) => (lo === hi ? hex(lo) : `${hex(lo)}-${hex(hi)}`))
        .join("");
      // Classes may match `/`, as in Go. `[^]` (everything) and `[]` (nothing) are valid JS.
      return token.negated ? `[^${body}]` : `[${body}]`;
    }
  }
}

/** True when the pattern has characters Go treats specially (`*?[\`), as Go's internal hasMeta. */
export function hasMeta(pattern: string): boolean {
  return /[*?[\\]/.test(pattern);
}

/** Compiles a Go pattern once; the returned function tests whole names. Throws BAD_PATTERN. */
export function compileGoPattern(pattern: string): (name: string) => boolean {
  const tokens = parseGoPattern(pattern);
  if (tokens.every((t) => t.kind === "literal")) {
    const literal = tokens.map((t) => (t.kind === "literal" ? t.char : "")).join("");
    return (name) => name === literal;
  }
  const re = new RegExp(`^${tokens.map(tokenRegex).join("")}$`, "u");
  return (name) => re.test(name);
}

/** Go `filepath.Match(pattern, name)` with `/` as the separator. Throws BAD_PATTERN when malformed. */
export function goMatch(pattern: string, name: string): boolean {
  return compileGoPattern(pattern)(name);
}
