// Shell-word variable expansion as BuildKit's lexer does it (frontend/dockerfile/shell/lex.go):
// quotes, escapes, $v / ${v} and the ${v:-w} ${v#p} ${v/p/r} ... modifiers, plus word splitting.
// It also reports which variables were found and which were referenced but unset.
import { TsbuildError, type ErrorCode } from "../errors.js";
import type { SourceRange } from "./types.js";

export type ExpandEnv = Record<string, string> | ReadonlyMap<string, string>;

export interface ExpandOptions {
  /** The Dockerfile escape character: "\\" (default) or "`" from `# escape=`. */
  escape?: string;
  /** Attached to errors so callers get a code frame. */
  range?: SourceRange;
  /** Quotes are plain characters (BuildKit's ExpandRaw, for COPY/ADD heredoc bodies). */
  skipProcessQuotes?: boolean;
}

export interface ExpandResult {
  value: string;
  /** Names looked up and found in env (BuildKit's "matched"), in first-use order. */
  used: string[];
  /** Names looked up but not set (BuildKit's "unmatched"), in first-use order. Includes `$1`, `$@`... */
  unset: string[];
}

// Go's unicode.IsSpace: the Unicode White_Space property.
const SPACE = /^[\t\n\v\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]$/u;
const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;
const SPECIAL_PARAMS = new Set(["@", "*", "#", "?", "-", "$", "!", "0"]);

/** BuildKit's wordsStruct: splits on unquoted whitespace coming from literal text and $-expansions. */
class Words {
  private word = "";
  private inWord = false;
  readonly words: string[] = [];

  addChar(ch: string): void {
    if (SPACE.test(ch)) {
      // An empty-but-started word (from "") is not emitted, as in BuildKit.
      if (this.inWord && this.word.length > 0) {
        this.words.push(this.word);
        this.word = "";
        this.inWord = false;
      }
    } else {
      this.addRawChar(ch);
    }
  }

  addRawChar(ch: string): void {
    this.word += ch;
    this.inWord = true;
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }

  finish(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = "";
      this.inWord = false;
    }
    return this.words;
  }
}

/** BuildKit's Lex switches, for callers that lex without expanding (heredoc detection). */
export interface LexMode {
  /** Keep quote characters in the result (RawQuotes). */
  rawQuotes?: boolean;
  /** Keep escape characters in the result (RawEscapes). */
  rawEscapes?: boolean;
  /** Leave references to unset variables as written (SkipUnsetEnv). */
  skipUnsetEnv?: boolean;
  /** Quotes are plain characters (SkipProcessQuotes): heredoc bodies, where they belong to the script. */
  skipProcessQuotes?: boolean;
}

// Blanks the lexer folds into a `<<` word (processPossibleHeredoc), so `<< EOF` stays one word.
const HEREDOC_BLANK = new Set([" ", "\t", "\r"]);

class ShellWord {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  private readonly rawQuotes: boolean;
  private readonly skipUnsetEnv: boolean;
  private readonly skipProcessQuotes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    word: string,
    private readonly lookup: (name: string) => string | undefined,
    private readonly escape: string,
    private readonly range: SourceRange | undefined,
    mode: LexMode = {},
  ) {
    // Work on code points, like Go's text/scanner works on runes.
    this.chars = Array.from(word);
    this.rawEscapes = mode.rawEscapes ?? false;
    this.rawQuotes = mode.rawQuotes ?? false;
    this.skipUnsetEnv = mode.skipUnsetEnv ?? false;
    this.skipProcessQuotes = mode.skipProcessQuotes ?? false;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    const c = this.chars[this.pos];
    if (c !== undefined) this.pos++;
    return c;
  }

  private fail(message: string, code: ErrorCode = "BAD_SUBSTITUTION"): TsbuildError {
    return new TsbuildError(code, message, this.range ? { range: this.range } : {});
  }

  private getEnv(name: string): string | undefined {
    const value = this.lookup(name);
    if (value === undefined) this.unmatched.add(name);
    else this.matched.add(name);
    return value;
  }

  /** Processes up to `stop` (consumed) or the end. `rawEscapes` keeps escape characters (for patterns). */
  processStopOn(stop: string | undefined, rawEscapes: boolean): { result: string; words: string[] } {
    let result = "";
    const words = new Words();
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
        if (stop !== undefined && ch === stop) {
          this.next();
          return { result, words: words.finish() };
        }
        if (ch === "$") {
          const tmp = this.processDollar();
          result += tmp;
          words.addString(tmp);
        } else if (ch === "<") {
          const tmp = this.processPossibleHeredoc();
          result += tmp;
          words.addRawString(tmp);
        } else if (ch === "'" && !this.skipProcessQuotes) {
          const tmp = this.processSingleQuote();
          result += tmp;
          words.addRawString(tmp);
        } else if (ch === '"' && !this.skipProcessQuotes) {
          const tmp = this.processDoubleQuote();
          result += tmp;
          words.addRawString(tmp);
        } else {
          let c = this.next() as string;
          if (c === this.escape) {
            if (this.rawEscapes) {
              words.addRawChar(c);
              result += c;
            }
            // The escape character takes the next one literally; a trailing one is dropped.
            const escaped = this.next();
            if (escaped === undefined) break;
            c = escaped;
            words.addRawChar(c);
          } else {
            words.addChar(c);
          }
          result += c;
        }
      }
      if (stop !== undefined) {
        throw this.fail(`unexpected end of statement while looking for matching ${stop}`);
      }
      return { result, words: words.finish() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  /** `<` alone is literal; `<<` takes the blanks after it into the same word, as BuildKit's lexer does. */
  private processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== "<") return "<";
    this.next();
    let result = "<<";
    while (HEREDOC_BLANK.has(this.peek() ?? "")) result += this.next() as string;
    return result;
  }

  private processSingleQuote(): string {
    // Everything up to the next ' is literal; a ' cannot be escaped inside.
    this.next();
    let result = this.rawQuotes ? "'" : "";
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw this.fail("unexpected end of statement while looking for matching single-quote");
      if (ch === "'") return this.rawQuotes ? result + ch : result;
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    // Literal except $ expansions; the escape character only escapes ", $ and itself.
    this.next();
    let result = this.rawQuotes ? '"' : "";
    for (;;) {
      const p = this.peek();
      if (p === undefined) throw this.fail("unexpected end of statement while looking for matching double-quote");
      if (p === '"') {
        this.next();
        return this.rawQuotes ? result + p : result;
      }
      if (p === "$") {
        result += this.processDollar();
        continue;
      }
      let ch = this.next() as string;
      if (ch === this.escape) {
        if (this.rawEscapes) result += ch;
        const after = this.peek();
        if (after === undefined) continue; // the loop then reports the missing quote
        if (after === '"' || after === "$" || after === this.escape) ch = this.next() as string;
      }
      result += ch;
    }
  }

  private processName(): string {
    let name = "";
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === "" && DIGIT.test(ch)) {
        // Positional parameters: all the digits, nothing else.
        while (this.peek() !== undefined && DIGIT.test(this.peek() as string)) name += this.next();
        return name;
      }
      if (name === "" && SPECIAL_PARAMS.has(ch)) {
        return this.next() as string;
      }
      if (!LETTER.test(ch) && !DIGIT.test(ch) && ch !== "_") break;
      name += this.next();
    }
    return name;
  }

  private processDollar(): string {
    this.next(); // $
    if (this.peek() !== "{") {
      const name = this.processName();
      // `$` not followed by a name stays literal.
      if (name === "") return "$";
      const value = this.getEnv(name);
      if (value === undefined && this.skipUnsetEnv) return `$${name}`;
      return value ?? "";
    }
    this.next(); // {
    const first = this.peek();
    if (first === undefined) throw this.fail("syntax error: missing '}'");
    if (first === "{" || first === "}" || first === ":") throw this.fail("syntax error: bad substitution");

    const name = this.processName();
    let ch = this.next();
    if (ch === undefined) throw this.fail("syntax error: missing '}'");
    let modifier = ch;
    let nullIsUnset = false;

    if (ch === "}") {
      const value = this.getEnv(name);
      if (value === undefined && this.skipUnsetEnv) return `\${${name}}`;
      return value ?? "";
    }

    if (ch === ":") {
      nullIsUnset = true;
      ch = this.next();
      if (ch === undefined) throw this.fail("syntax error: missing '}'");
      modifier += ch;
    } else if (ch === "/") {
      return this.processReplace(name);
    } else if (!"+-?#%".includes(ch)) {
      throw this.fail(`unsupported modifier (${modifier}) in substitution`);
    }

    // Patterns keep their escapes so the glob converter can tell \* from *.
    const rawEscapes = ch === "#" || ch === "%";
    let word: string;
    try {
      word = this.processStopOn("}", rawEscapes).result;
    } catch (e) {
      if (this.peek() === undefined) throw this.fail("syntax error: missing '}'");
      throw e;
    }

    const value = this.getEnv(name);
    const set = value !== undefined;
    // Left as written, modifier and word included (BuildKit rebuilds `${name<modifier><word>}`).
    if (!set && this.skipUnsetEnv) return `\${${name}${modifier}${word}}`;
    const isNull = !set || (nullIsUnset && value === "");
    switch (ch) {
      case "-":
        return isNull ? word : (value as string);
      case "+":
        return isNull ? "" : word;
      case "?":
        if (!set) throw this.fail(`${name}: ${word !== "" ? word : "is not allowed to be unset"}`, "UNSET_VARIABLE");
        if (nullIsUnset && value === "") {
          throw this.fail(`${name}: ${word !== "" ? word : "is not allowed to be empty"}`, "UNSET_VARIABLE");
        }
        return value;
      case "#":
      case "%": {
        // #/% remove the shortest match, ##/%% the longest.
        let greedy = false;
        if (word.startsWith(ch)) {
          greedy = true;
          word = word.slice(1);
        }
        return ch === "%" ? this.trimSuffix(word, value ?? "", greedy) : this.trimPrefix(word, value ?? "", greedy);
      }
      default:
        throw this.fail(`unsupported modifier (${modifier}) in substitution`);
    }
  }

  private processReplace(name: string): string {
    const replaceAll = this.peek() === "/";
    if (replaceAll) this.next();
    let pattern: string;
    try {
      pattern = this.processStopOn("/", true).result;
    } catch (e) {
      if (this.peek() === undefined) throw this.fail("syntax error: missing '/' in ${}");
      throw e;
    }
    let replacement: string;
    try {
      replacement = this.processStopOn("}", true).result;
    } catch (e) {
      if (this.peek() === undefined) throw this.fail("syntax error: missing '}'");
      throw e;
    }
    const found = this.getEnv(name);
    if (found === undefined && this.skipUnsetEnv) return `\${${name}/${pattern}/${replacement}}`;
    const value = found ?? "";
    const source = this.patternToRegex(pattern, true, false);
    if (replaceAll) return goReplaceAll(new RegExp(source, "gu"), value, replacement);
    const m = new RegExp(source, "u").exec(value);
    if (m === null) return value;
    return value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length);
  }

  /** BuildKit's convertShellPatternToRegex: `*` and `?` wildcards, `\` escapes, no bracket expressions. */
  private patternToRegex(pattern: string, greedy: boolean, anchored: boolean): string {
    const chars = Array.from(pattern);
    let out = anchored ? "^" : "";
    // Go's `.` stops only at \n, unlike JS's `.` which also stops at \r and U+2028/9.
    const any = "[^\\n]";
    for (let i = 0; i < chars.length; i++) {
      const tok = chars[i] as string;
      if (tok === "*") {
        out += greedy ? `${any}*` : `${any}*?`;
      } else if (tok === "?") {
        out += any;
      } else if (tok === "\\") {
        const next = chars[i + 1];
        // `}` and `/` are escaped only to get them through ${...}; the escape is not part of the pattern.
        if (next === "}" || next === "/") continue;
        if (next !== "*" && next !== "?" && next !== "\\") {
          throw this.fail(`invalid pattern (${pattern}) in substitution: invalid escape '\\${next ?? ""}'`);
        }
        out += `\\${next}`;
        i++;
      } else if ("[]{}.+()|^$".includes(tok)) {
        out += `\\${tok}`;
      } else {
        out += tok;
      }
    }
    return out;
  }

  private trimPrefix(pattern: string, value: string, greedy: boolean): string {
    const m = new RegExp(this.patternToRegex(pattern, greedy, true), "u").exec(value);
    return m === null ? value : value.slice(m.index + m[0].length);
  }

  private trimSuffix(pattern: string, value: string, greedy: boolean): string {
    // A RegExp cannot find the shortest rightmost match, so reverse both and trim a prefix.
    return reverse(this.trimPrefix(reversePattern(pattern), reverse(value), greedy));
  }
}

function reverse(s: string): string {
  return Array.from(s).reverse().join("");
}

/** Reverses a pattern keeping each `\x` escape in front of its character: a\*c → c\*a. */
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out: string[] = new Array<string>(chars.length);
  const last = chars.length - 1;
  for (let i = 0; i <= last;) {
    const tok = chars[i] as string;
    const at = last - i;
    if (tok === "\\" && i !== last) {
      out[at - 1] = tok;
      out[at] = chars[i + 1] as string;
      i += 2;
    } else {
      out[at] = tok;
      i++;
    }
  }
  return out.join("");
}

/**
 * Go's Regexp.ReplaceAllString: empty matches right after a previous match are skipped, and the
 * replacement is a template where $0 / ${0} is the match, other $names are empty and $$ is $.
 */
function goReplaceAll(re: RegExp, value: string, template: string): string {
  let out = "";
  let copied = 0;
  let pos = 0;
  let prevEnd = -1;
  while (pos <= value.length) {
    re.lastIndex = pos;
    const m = re.exec(value);
    if (m === null) break;
    const start = m.index;
    const end = start + m[0].length;
    let accept = true;
    if (end === pos) {
      if (start === prevEnd) accept = false;
      // Step over one whole character.
      const cp = value.codePointAt(pos);
      pos += cp === undefined ? 1 : cp > 0xffff ? 2 : 1;
    } else {
      pos = end;
    }
    prevEnd = end;
    if (accept) {
      out += value.slice(copied, start) + expandGoTemplate(template, m[0]);
      copied = end;
    }
  }
  return out + value.slice(copied);
}

function expandGoTemplate(template: string, match: string): string {
  if (!template.includes("$")) return template;
  let out = "";
  let i = 0;
  while (i < template.length) {
    const dollar = template.indexOf("$", i);
    if (dollar < 0) break;
    out += template.slice(i, dollar);
    i = dollar + 1;
    if (template[i] === "$") {
      out += "$";
      i++;
      continue;
    }
    const m = /^(?:\{([\p{L}\p{Nd}_]+)\}|([\p{L}\p{Nd}_]+))/u.exec(template.slice(i));
    if (m === null) {
      out += "$";
      continue;
    }
    i += m[0].length;
    const name = m[1] ?? m[2] ?? "";
    // The pattern has no capture groups: only group 0 (the whole match) exists.
    // Go rejects leading zeros, so only "0" itself names it.
    if (name === "0") out += match;
  }
  return out + template.slice(i);
}

function makeLookup(env: ExpandEnv): (name: string) => string | undefined {
  // Case-sensitive, as Docker on Linux.
  if (env instanceof Map) return (name) => env.get(name);
  const rec = env as Record<string, string>;
  return (name) => (Object.hasOwn(rec, name) ? rec[name] : undefined);
}

function run(word: string, env: ExpandEnv, opts: ExpandOptions): { sw: ShellWord; result: string; words: string[] } {
  const escape = opts.escape ?? "\\";
  const sw = new ShellWord(word, makeLookup(env), escape, opts.range, { skipProcessQuotes: opts.skipProcessQuotes ?? false });
  const { result, words } = sw.processStopOn(undefined, false);
  return { sw, result, words };
}

/** Expands one word (BuildKit's ProcessWord): quotes removed, variables substituted, no splitting. */
export function expandWord(word: string, env: ExpandEnv, opts: ExpandOptions = {}): string {
  return run(word, env, opts).result;
}

/** Expands and splits on unquoted whitespace (BuildKit's ProcessWords). Empty words are dropped. */
export function expandWords(word: string, env: ExpandEnv, opts: ExpandOptions = {}): string[] {
  return run(word, env, opts).words;
}

/** expandWord plus the variables it looked up, for cache keys and UndefinedVar checks. */
export function expandWordWithInfo(word: string, env: ExpandEnv, opts: ExpandOptions = {}): ExpandResult {
  const { sw, result } = run(word, env, opts);
  return { value: result, used: [...sw.matched], unset: [...sw.unmatched] };
}

/**
 * Splits without an environment, as BuildKit's Lex does with its Raw and SkipUnsetEnv switches: what heredoc
 * detection sees. Throws (BAD_SUBSTITUTION) where the lexer does, e.g. on an unclosed quote.
 */
export function lexWords(word: string, escape: string, mode: LexMode): string[] {
  const sw = new ShellWord(word, () => undefined, escape, undefined, mode);
  return sw.processStopOn(undefined, mode.rawEscapes ?? false).words;
}
