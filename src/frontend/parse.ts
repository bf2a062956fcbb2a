// Dockerfile text → ParsedDockerfile: logical lines (logical-lines.ts) are each lexed by moo and parsed by the nearley
// grammar in grammar/dockerfile.ne into keyword + flags + rest, then split into args by instruction kind.
import nearley from "nearley";
import grammar, { type LineAst } from "./grammar.generated.js";
import { DockerfileParseError, TsbuildError } from "../errors.js";
import { KEYWORDS, type Instruction, type Keyword, type ParsedDockerfile, type SourceRange } from "./types.js";
import { splitLogicalLines, type LogicalLine } from "./logical-lines.js";
import { splitWords } from "./words.js";
import { tryJsonArrayOf } from "./json-args.js";
import { editDistance } from "./edit-distance.js";
import { argWordRanges, endRange, recordLayout } from "./locate.js";
import { decodeInstruction } from "./instructions.js";

const compiled = nearley.Grammar.fromCompiled(grammar);
const KEYWORD_SET = new Set<string>(KEYWORDS);
/** Instructions whose arguments may be a JSON array (exec form). */
const JSON_CAPABLE = new Set<string>(["RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"]);
/** Instructions whose whole rest is one argument. */
const WHOLE_REST = new Set<string>(["WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER", "HEALTHCHECK", "ONBUILD"]);

export interface ParseOptions {
  file?: string;
}

export function parseDockerfile(input: string | Uint8Array, opts: ParseOptions = {}): ParsedDockerfile {
  const file = opts.file ?? "Dockerfile";
  const text = typeof input === "string" ? input : Buffer.from(input).toString("utf8");
  try {
    const { directives, lines, warnings } = splitLogicalLines(text, file);
    const instructions = lines.map((l) => parseLine(l, directives.escape));
    if (instructions.length === 0)
      throw new DockerfileParseError("EMPTY_DOCKERFILE", `file with no instructions: ${file} is empty or only has comments`, {
        range: { file, start: { line: 1, column: 1 }, end: { line: 1, column: 1 } },
        hint: "start it with FROM IMAGE",
      });
    // Flag and argument errors surface now, with positions, rather than halfway through a build.
    for (const i of instructions) decodeInstruction(i);
    return { file, directives, instructions, warnings };
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

/** Parse one logical line (also used for ONBUILD triggers, with baseOffset into the outer line). */
function parseLine(line: LogicalLine, escape: string, baseOffset = 0, inner = false): Instruction {
  const text = line.text.slice(baseOffset);
  const ast = lex(line, text, baseOffset);
  const word = ast.keyword.value;
  const keyword = word.toUpperCase();
  const kwRange = pointRange(line, baseOffset, word.length);
  if (!KEYWORD_SET.has(keyword)) {
    const s = suggest(word);
    throw new DockerfileParseError("UNKNOWN_INSTRUCTION", `unknown instruction: ${word}`, {
      range: kwRange,
      hint: s ? `did you mean ${s}?` : "instructions are FROM, RUN, COPY, ADD, ENV, ARG, WORKDIR, USER, CMD, ENTRYPOINT, ...",
    });
  }
  const restOffset = ast.rest ? ast.rest.offset : text.length;
  const rest = text.slice(restOffset);
  const restRange = (o = 0, n = rest.length) => pointRange(line, baseOffset + restOffset + o, n);
  const instr: Instruction = {
    keyword: keyword as Keyword,
    flags: ast.flags.map((f) => f.value),
    args: [],
    json: false,
    heredocs: inner ? [] : line.heredocs,
    original: inner ? text : line.original,
    range: inner ? { ...line.range, start: line.positionOf(baseOffset) } : line.range,
  };
  if (!inner && line.comments.length > 0) instr.comments = line.comments;
  recordLayout(instr, { text, positionOf: (o) => line.positionOf(baseOffset + o), flagOffsets: ast.flags.map((f) => f.offset), restOffset });
  if (keyword === "ONBUILD") {
    if (!ast.rest) throw arity(keyword, kwRange, "ONBUILD needs an instruction to run later");
    const trigger = parseLine(line, escape, baseOffset + restOffset, true);
    if (trigger.keyword === "ONBUILD")
      throw new DockerfileParseError("BAD_ONBUILD", "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", { range: restRange() });
    if (trigger.keyword === "FROM" || trigger.keyword === "MAINTAINER")
      throw new DockerfileParseError("BAD_ONBUILD", `${trigger.keyword} isn't allowed as an ONBUILD trigger`, { range: restRange() });
    trigger.heredocs = line.heredocs;
    instr.trigger = trigger;
    instr.args = [rest];
    return instr;
  }
  if (JSON_CAPABLE.has(keyword)) {
    const arr = tryJsonArrayOf(rest);
    if (arr) {
      instr.json = true;
      instr.args = arr;
    } else if (keyword === "SHELL") {
      throw new DockerfileParseError("SHELL_NOT_JSON", "SHELL requires the arguments to be in JSON form", {
        range: restRange(),
        hint: 'e.g. SHELL ["/bin/bash", "-c"]',
      });
    } else if (keyword === "COPY" || keyword === "ADD" || keyword === "VOLUME") {
      instr.args = splitWords(rest, escape);
    } else if (rest !== "") instr.args = [rest];
  } else if (keyword === "ENV" || keyword === "LABEL") {
    instr.args = keyValues(keyword, rest, escape, line, baseOffset + restOffset);
  } else if (WHOLE_REST.has(keyword)) {
    if (rest !== "") instr.args = [rest];
  } else {
    instr.args = splitWords(rest, escape);
  }
  checkArity(instr, kwRange);
  return instr;
}

function arity(keyword: string, range: SourceRange, message?: string): DockerfileParseError {
  return new DockerfileParseError("ARITY", message ?? `${keyword} requires at least one argument`, { range });
}

function checkArity(i: Instruction, kwRange: SourceRange): void {
  const n = i.args.length + i.heredocs.length;
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
      if (n < 2 && !(i.heredocs.length > 0 && i.args.length >= 1))
        throw arity(
          i.keyword,
          endRange(i),
          `${i.keyword} requires at least two arguments, but only ${n === 0 ? "none were" : "one was"} provided. Destination could not be determined`,
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
    if (value === "" && keyword === "ENV")
      throw new DockerfileParseError("ARITY", `ENV must have two arguments: ENV ${first} requires a value`, {
        range: pointRange(line, offset, rest.length),
        hint: `write ENV ${first}=VALUE`,
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
    if (eq === 0)
      throw new DockerfileParseError("BAD_KEY_VALUE", `${keyword} names can not be blank`, {
        range: pointRange(line, offset + Math.max(0, rest.indexOf(w)), w.length),
      });
    out.push(w.slice(0, eq), w.slice(eq + 1));
  }
  return out;
}
