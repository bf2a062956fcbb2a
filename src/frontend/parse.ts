// Dockerfile text → syntax tree (parseSyntax) → checked instructions (parseDockerfile): logical lines (logical-lines.ts) are each lexed by moo and parsed by the nearley
// grammar in grammar/dockerfile.ne into keyword + flags + rest, then split into args by instruction kind.
import nearley from "nearley";
import grammar, { type LineAst } from "./grammar.generated.js";
import { DockerfileParseError, TsbuildError } from "../errors.js";
import { KEYWORDS, type Instruction, type ParsedDockerfile, type SourceRange, type SyntaxInstruction, type SyntaxTree } from "./types.js";
import { splitLogicalLines, type LogicalLine } from "./logical-lines.js";
import { splitWords } from "./words.js";
import { isJsonArrayOfNonStrings, tryJsonArrayOf } from "./json-args.js";
import { editDistance } from "./edit-distance.js";
import { argWordRanges, endRange, keywordAsWritten, rangeAt, recordLayout } from "./locate.js";
import { decodeInstruction } from "./instructions.js";
import { heredocMarkers, type HeredocMarker } from "./heredoc.js";

const compiled = nearley.Grammar.fromCompiled(grammar);
const KEYWORD_SET = new Set<string>(KEYWORDS);
/** Instructions whose arguments may be a JSON array (exec form). */
const JSON_CAPABLE = new Set<string>(["RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"]);
const HEREDOC_KEYWORDS = new Set<string>(["RUN", "COPY", "ADD"]);
/** Instructions whose whole rest is one argument. */
const WHOLE_REST = new Set<string>(["WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER", "HEALTHCHECK", "ONBUILD"]);

export interface ParseOptions {
  file?: string;
}

/**
 * Dockerfile text → syntax tree, rejecting only what BuildKit's parser rejects (directives, continuations, heredocs,
 * ENV/LABEL forms, JSON arrays of non-strings, an empty file). Unknown instructions, arity, flags and stage rules are
 * instruction-level errors: `parseDockerfile` reports them, as BuildKit's instructions package does.
 */
export function parseSyntax(input: string | Uint8Array, opts: ParseOptions = {}): SyntaxTree {
  const file = opts.file ?? "Dockerfile";
  const text = typeof input === "string" ? input : Buffer.from(input).toString("utf8");
  return guarded(file, () => {
    const { directives, lines, warnings } = splitLogicalLines(text, file, heredocMarkersOf);
    const instructions = lines.map((l) => parseLine(l, directives.escape));
    if (instructions.length === 0)
      throw new DockerfileParseError("EMPTY_DOCKERFILE", `file with no instructions: ${file} is empty or only has comments`, {
        range: { file, start: { line: 1, column: 1 }, end: { line: 1, column: 1 } },
        hint: "start it with FROM IMAGE",
      });
    return { file, directives, instructions, warnings };
  });
}

/** The syntax tree with every instruction checked: known keyword, arguments and flags (what `build` and `check` use). */
export function parseDockerfile(input: string | Uint8Array, opts: ParseOptions = {}): ParsedDockerfile {
  const tree = parseSyntax(input, opts);
  return guarded(tree.file, () => {
    // Line by line, as BuildKit's instructions.Parse: the first bad instruction is the one reported.
    const instructions = tree.instructions.map((i) => {
      const checked = checkInstruction(i);
      decodeInstruction(checked);
      return checked;
    });
    return { ...tree, instructions };
  });
}

function guarded<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TsbuildError) throw e;
    // Defensive: no input may surface as anything but a positioned parse error.
    // The original error stays the cause: with --debug its stack shows the parser bug, not a syntax error.
    throw new DockerfileParseError("PARSE_FAILED", `cannot parse ${file}: ${e instanceof Error ? e.message : String(e)}`, {
      range: { file, start: { line: 1, column: 1 }, end: { line: 1, column: 1 } },
      cause: e,
    });
  }
}

function pointRange(line: LogicalLine, offset: number, length: number): SourceRange {
  const start = line.positionOf(offset);
  const end = line.positionOf(offset + Math.max(0, length));
  return { file: line.range.file, start, end };
}

function suggest(word: string): string | undefined {
  const w = word.toUpperCase();
  let best: string | undefined;
  let bestD = 3;
  for (const k of KEYWORDS) {
    const d = editDistance(w, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

function lex(line: LogicalLine, text: string, baseOffset: number): LineAst {
  const parser = new nearley.Parser(compiled);
  try {
    parser.feed(text);
  } catch (e) {
    const offset = (e as { offset?: number; token?: { offset?: number } }).token?.offset ?? 0;
    throw new DockerfileParseError("SYNTAX", `cannot parse instruction: unexpected input`, { range: pointRange(line, baseOffset + offset, 1), cause: e });
  }
  const ast = parser.results[0] as LineAst | undefined;
  if (!ast) throw new DockerfileParseError("SYNTAX", "incomplete instruction", { range: line.range });
  return ast;
}

/** Keyword and arguments of a line, or undefined when it does not lex (its error comes when the line is parsed). */
function keywordAndRest(text: string): { keyword: string; rest: string } | undefined {
  const parser = new nearley.Parser(compiled);
  try {
    parser.feed(text);
  } catch {
    return undefined;
  }
  const ast = parser.results[0] as LineAst | undefined;
  return ast && { keyword: ast.keyword.value.toUpperCase(), rest: ast.rest ? text.slice(ast.rest.offset) : "" };
}

/** BuildKit's canContainHeredoc: RUN, COPY and ADD (also as an ONBUILD trigger), not in exec form. */
function heredocMarkersOf(text: string, range: SourceRange): HeredocMarker[] {
  let parts = keywordAndRest(text);
  if (parts?.keyword === "ONBUILD") parts = keywordAndRest(parts.rest);
  if (!parts || !HEREDOC_KEYWORDS.has(parts.keyword) || tryJsonArrayOf(parts.rest)) return [];
  return heredocMarkers(text, range);
}

/** Exec form, or undefined for shell form; a JSON array holding anything but strings is a parse error in BuildKit. */
function jsonArgs(text: string, range: () => SourceRange): string[] | undefined {
  const arr = tryJsonArrayOf(text);
  if (!arr && isJsonArrayOfNonStrings(text))
    throw new DockerfileParseError("BAD_JSON", "when using JSON array syntax, arrays must be comprised of strings only", { range: range() });
  return arr;
}

/** Parse one logical line (also used for ONBUILD triggers, with baseOffset into the outer line). */
function parseLine(line: LogicalLine, escape: string, baseOffset = 0, inner = false): SyntaxInstruction {
  const text = line.text.slice(baseOffset);
  const ast = lex(line, text, baseOffset);
  const keyword = ast.keyword.value.toUpperCase();
  const restOffset = ast.rest ? ast.rest.offset : text.length;
  const rest = text.slice(restOffset);
  const restRange = (o = 0, n = rest.length) => pointRange(line, baseOffset + restOffset + o, n);
  const instr: SyntaxInstruction = {
    keyword,
    flags: ast.flags.map((f) => f.value),
    args: [],
    json: false,
    heredocs: inner ? [] : line.heredocs,
    original: inner ? text : line.original,
    range: inner ? { ...line.range, start: line.positionOf(baseOffset) } : line.range,
  };
  if (!inner && line.comments.length > 0) instr.comments = line.comments;
  recordLayout(instr, { text, positionOf: (o) => line.positionOf(baseOffset + o), flagOffsets: ast.flags.map((f) => f.offset), restOffset });
  if (!KEYWORD_SET.has(keyword)) return instr; // BuildKit's parseIgnore: kept, without arguments
  if (keyword === "ONBUILD") {
    if (!ast.rest) return instr;
    const trigger = parseLine(line, escape, baseOffset + restOffset, true);
    trigger.heredocs = line.heredocs;
    instr.trigger = trigger;
    instr.args = [rest];
    return instr;
  }
  if (JSON_CAPABLE.has(keyword)) {
    const arr = jsonArgs(rest, restRange);
    if (arr) {
      instr.json = true;
      instr.args = arr;
    } else if (keyword === "COPY" || keyword === "ADD" || keyword === "VOLUME") {
      instr.args = splitOnBlanks(rest);
    } else if (rest !== "") instr.args = [rest];
  } else if (keyword === "ENV" || keyword === "LABEL") {
    instr.args = keyValues(keyword, rest, escape, line, baseOffset + restOffset);
  } else if (WHOLE_REST.has(keyword)) {
    if (keyword === "HEALTHCHECK") {
      const cmd = /^\S+\s+([\s\S]*)$/.exec(rest);
      if (cmd) jsonArgs(cmd[1] as string, restRange);
    }
    if (rest !== "") instr.args = [rest];
  } else if (keyword === "ARG") {
    instr.args = splitWords(rest, escape);
  } else {
    instr.args = splitOnBlanks(rest);
  }
  return instr;
}

/**
 * FROM, EXPOSE and shell-form COPY, ADD, VOLUME: split on blanks, quotes or not (BuildKit's
 * parseStringsWhitespaceDelimited), so `COPY "a b" /d` has the sources `"a` and `b"`; JSON form is how to write spaces.
 */
function splitOnBlanks(rest: string): string[] {
  return rest === "" ? [] : rest.split(/[\t\v\f\r ]+/);
}

function isKnown(i: SyntaxInstruction): i is Instruction {
  return KEYWORD_SET.has(i.keyword);
}

/** The instruction-level checks BuildKit's instructions package makes: keyword, arity, ONBUILD triggers, ENV names. */
function checkInstruction(i: SyntaxInstruction): Instruction {
  const word = keywordAsWritten(i);
  const kwRange = rangeAt(i, 0, i.keyword.length);
  if (!isKnown(i)) {
    const s = suggest(word);
    throw new DockerfileParseError("UNKNOWN_INSTRUCTION", `unknown instruction: ${word}`, {
      range: kwRange,
      hint: s ? `did you mean ${s}?` : "instructions are FROM, RUN, COPY, ADD, ENV, ARG, WORKDIR, USER, CMD, ENTRYPOINT, ...",
    });
  }
  if (i.keyword === "ONBUILD") {
    if (!i.trigger) throw arity(i.keyword, kwRange, "ONBUILD needs an instruction to run later");
    const restRange = i.trigger.range;
    if (i.trigger.keyword === "ONBUILD")
      throw new DockerfileParseError("BAD_ONBUILD", "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", { range: restRange });
    if (i.trigger.keyword === "FROM" || i.trigger.keyword === "MAINTAINER")
      throw new DockerfileParseError("BAD_ONBUILD", `${i.trigger.keyword} isn't allowed as an ONBUILD trigger`, { range: restRange });
    checkInstruction(i.trigger);
  }
  if (i.keyword === "SHELL" && !i.json && i.args.length > 0)
    throw new DockerfileParseError("SHELL_NOT_JSON", "SHELL requires the arguments to be in JSON form", {
      range: argWordRanges(i)[0]?.range ?? i.range,
      hint: 'e.g. SHELL ["/bin/bash", "-c"]',
    });
  if (i.keyword === "ENV" || i.keyword === "LABEL")
    for (let k = 0; k < i.args.length; k += 2)
      if (i.args[k] === "")
        throw new DockerfileParseError("BAD_KEY_VALUE", `${i.keyword} names can not be blank`, {
          range: argWordRanges(i).find((w) => w.text.startsWith("="))?.range ?? i.range,
        });
  checkArity(i, kwRange);
  return i;
}

function arity(keyword: string, range: SourceRange, message?: string): DockerfileParseError {
  return new DockerfileParseError("ARITY", message ?? `${keyword} requires at least one argument`, { range });
}

function checkArity(i: Instruction, kwRange: SourceRange): void {
  const words = () => argWordRanges(i);
  switch (i.keyword) {
    case "FROM": {
      const w = words();
      if (i.args.length === 0) throw arity(i.keyword, endRange(i), "FROM requires the name of an image or stage (or scratch)");
      if (i.args.length === 2 && (i.args[1] as string).toUpperCase() === "AS")
        throw arity(i.keyword, endRange(i), "FROM IMAGE AS needs a stage name: FROM IMAGE AS NAME");
      if (i.args.length === 3 && (i.args[1] as string).toUpperCase() !== "AS")
        throw arity(i.keyword, w[1]?.range ?? kwRange, `expected "AS" as the second argument of FROM, got ${JSON.stringify(i.args[1])}`);
      if (i.args.length === 2 || i.args.length > 3)
        throw arity(i.keyword, w[i.args.length > 3 ? 3 : 1]?.range ?? kwRange, "FROM requires either one or three arguments: FROM IMAGE [AS NAME]");
      return;
    }
    case "COPY":
    case "ADD":
      // Heredoc markers count as arguments (BuildKit's parseSourcesAndDest): `COPY <<EOF` has no destination.
      if (i.args.length < 2)
        throw arity(
          i.keyword,
          endRange(i),
          `${i.keyword} requires at least two arguments, but only ${i.args.length === 0 ? "none were" : "one was"} provided. Destination could not be determined`,
        );
      return;
    case "STOPSIGNAL":
    case "WORKDIR":
    case "USER":
    case "MAINTAINER":
      if (i.args.length === 0 || (i.args[0] as string).trim() === "") throw arity(i.keyword, endRange(i), `${i.keyword} requires exactly one argument`);
      if (i.keyword === "STOPSIGNAL" && /\s/.test((i.args[0] as string).trim()))
        throw arity(i.keyword, words()[1]?.range ?? kwRange, "STOPSIGNAL requires exactly one argument");
      return;
    case "ARG":
    case "ENV":
    case "LABEL":
    case "EXPOSE":
    case "VOLUME":
    case "SHELL":
    case "HEALTHCHECK":
    case "RUN":
      if (i.args.length === 0 && i.heredocs.length === 0 && !(i.keyword === "RUN" && i.json)) throw arity(i.keyword, endRange(i));
      if (i.keyword === "VOLUME" && i.args.some((p) => p.trim() === "")) throw arity(i.keyword, kwRange, "VOLUME specified can not be an empty string");
      return;
    default:
      return;
  }
}

/** ENV/LABEL: `k=v k2="v 2"` pairs, or the legacy `k v w` form (value = rest of the line). Values stay raw. */
function keyValues(keyword: string, rest: string, escape: string, line: LogicalLine, offset: number): string[] {
  const words = splitWords(rest, escape);
  if (words.length === 0) return [];
  const first = words[0] as string;
  if (!first.includes("=")) {
    // Legacy form: ENV key value with spaces
    const value = rest.slice(rest.indexOf(first) + first.length).trim();
    if (value === "")
      throw new DockerfileParseError("ARITY", `${keyword} must have two arguments: ${keyword} ${first} requires a value`, {
        range: pointRange(line, offset, rest.length),
        hint: `write ${keyword} ${first}=VALUE`,
      });
    return [first, value];
  }
  const out: string[] = [];
  for (const w of words) {
    const eq = w.indexOf("=");
    if (eq < 0)
      throw new DockerfileParseError("BAD_KEY_VALUE", `Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`, {
        range: pointRange(line, offset + Math.max(0, rest.indexOf(w)), w.length),
      });
    out.push(w.slice(0, eq), w.slice(eq + 1));
  }
  return out;
}
