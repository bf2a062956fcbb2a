// A small subset of Go's text/template, enough for docker's `--format` strings: `{{.Field.Sub}}`, `{{.}}`,
// functions (json, index, join, split, upper, lower, title, len, println, truncate, pad, eq, ne, not, and, or),
// pipes, `{{if}}…{{else}}…{{end}}`, `{{range}}…{{end}}`, `{{- -}}` trimming; and docker's format layer
// (`table`, `json`, `\t`/`\n` escapes, aligned columns). Data: plain objects are structs (an unknown field is
// an error naming the valid ones), Maps are maps (a missing key prints `<no value>`, as in Go).
import { UsageError } from "../errors.js";
import { suggest } from "../util/suggest.js";

type Node =
  | { kind: "text"; text: string }
  | { kind: "action"; pipe: Command[]; source: string }
  | { kind: "if"; cond: Command[]; then: Node[]; else: Node[]; source: string }
  | { kind: "range"; over: Command[]; body: Node[]; else: Node[]; source: string };
type Operand = { kind: "field"; path: string[] } | { kind: "literal"; value: unknown } | { kind: "func"; name: string };
type Command = Operand[];

/** A parsed template; `execute` throws UsageError BAD_TEMPLATE for an unknown field or a bad call. */
export interface GoTemplate {
  readonly source: string;
  execute(data: unknown): string;
}

const FUNCTIONS = ["and", "eq", "index", "join", "json", "len", "lower", "ne", "not", "or", "pad", "print", "println", "split", "title", "truncate", "upper"];

function bad(source: string, why: string, hint?: string): UsageError {
  return new UsageError("BAD_TEMPLATE", `--format ${JSON.stringify(source)}: ${why}`, {
    hint: hint ?? "a format is a Go template such as '{{.Repository}}:{{.Tag}}' or '{{json .}}', or table/json",
  });
}

// ---- lexing and parsing ----

function tokenize(action: string, source: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < action.length) {
    const c = action[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < action.length && action[j] !== '"') j += action[j] === "\\" ? 2 : 1;
      if (j >= action.length) throw bad(source, `unterminated string in {{${action}}}`);
      out.push(action.slice(i, j + 1));
      i = j + 1;
    } else if (c === "`") {
      const j = action.indexOf("`", i + 1);
      if (j < 0) throw bad(source, `unterminated raw string in {{${action}}}`);
      out.push(action.slice(i, j + 1));
      i = j + 1;
    } else if (c === "|" || c === "(" || c === ")") {
      out.push(c);
      i++;
    } else {
      let j = i;
      while (j < action.length && !/[\s|()"`]/.test(action[j] as string)) j++;
      out.push(action.slice(i, j));
      i = j;
    }
  }
  return out;
}

function operand(tok: string, action: string, source: string): Operand {
  if (tok.startsWith('"')) {
    try {
      return { kind: "literal", value: JSON.parse(tok) as string };
    } catch {
      throw bad(source, `the string ${tok} in {{${action}}} has an escape tsbuild does not know`);
    }
  }
  if (tok.startsWith("`")) return { kind: "literal", value: tok.slice(1, -1) };
  if (tok === ".") return { kind: "field", path: [] };
  if (tok.startsWith(".")) {
    const path = tok.slice(1).split(".");
    if (path.some((p) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(p))) throw bad(source, `${tok} in {{${action}}} is not a field reference`);
    return { kind: "field", path };
  }
  if (/^-?[0-9]+(\.[0-9]+)?$/.test(tok)) return { kind: "literal", value: Number(tok) };
  if (tok === "true" || tok === "false") return { kind: "literal", value: tok === "true" };
  if (tok === "nil") return { kind: "literal", value: null };
  if (FUNCTIONS.includes(tok)) return { kind: "func", name: tok };
  if (tok.startsWith("$")) throw bad(source, `variables (${tok}) are not supported in {{${action}}}`, "use . and field references such as {{.Config.Env}}");
  if (tok === "(" || tok === ")") throw bad(source, `parentheses are not supported in {{${action}}}`, "use a pipe: {{.Field | json}}");
  const near = suggest(tok, FUNCTIONS);
  throw bad(
    source,
    `unknown function ${JSON.stringify(tok)} in {{${action}}} (the functions are ${FUNCTIONS.join(", ")})`,
    near ? `did you mean ${near}?` : undefined,
  );
}

function pipeline(action: string, source: string): Command[] {
  const toks = tokenize(action, source);
  if (toks.length === 0) throw bad(source, "an empty action {{}}");
  const cmds: Command[] = [[]];
  for (const t of toks) {
    if (t === "|") cmds.push([]);
    else (cmds[cmds.length - 1] as Command).push(operand(t, action, source));
  }
  if (cmds.some((c) => c.length === 0)) throw bad(source, `an empty command in the pipe {{${action}}}`);
  return cmds;
}

/** Parses `source` (after docker's escapes, if the caller wants them). Throws UsageError BAD_TEMPLATE. */
export function parseGoTemplate(source: string): GoTemplate {
  // Split into text and actions, honouring {{- and -}} (which trim the whitespace beside them).
  type Piece = { text: string } | { action: string };
  const pieces: Piece[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf("{{", i);
    if (open < 0) {
      pieces.push({ text: source.slice(i) });
      break;
    }
    let text = source.slice(i, open);
    let start = open + 2;
    if (source.startsWith("- ", start) || source.startsWith("-\t", start) || source.startsWith("-\n", start)) {
      text = text.trimEnd();
      start++;
    }
    pieces.push({ text });
    const close = source.indexOf("}}", start);
    if (close < 0) throw bad(source, "a {{ without its }}");
    let body = source.slice(start, close);
    i = close + 2;
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      const m = /^\s*/.exec(source.slice(i));
      i += m ? m[0].length : 0;
    }
    body = body.trim();
    if (body.startsWith("/*") && body.endsWith("*/")) continue;
    pieces.push({ action: body });
  }

  let pos = 0;
  const parseList = (stopAt: readonly string[]): { nodes: Node[]; stop: string | undefined } => {
    const nodes: Node[] = [];
    while (pos < pieces.length) {
      const p = pieces[pos++] as Piece;
      if ("text" in p) {
        if (p.text) nodes.push({ kind: "text", text: p.text });
        continue;
      }
      const word = p.action.split(/\s+/)[0] as string;
      if (word === "end" || word === "else") {
        if (!stopAt.includes(word)) throw bad(source, `{{${word}}} without a matching {{if}} or {{range}}`);
        return { nodes, stop: word };
      }
      if (word === "if" || word === "range") {
        const expr = p.action.slice(word.length).trim();
        if (!expr) throw bad(source, `{{${word}}} needs a value`);
        const cmds = pipeline(expr, source);
        const body = parseList(["else", "end"]);
        let alt: Node[] = [];
        if (body.stop === "else") {
          const rest = parseList(["end"]);
          if (rest.stop !== "end") throw bad(source, `{{${word} ${expr}}} has no {{end}}`);
          alt = rest.nodes;
        } else if (body.stop !== "end") throw bad(source, `{{${word} ${expr}}} has no {{end}}`);
        nodes.push(
          word === "if"
            ? { kind: "if", cond: cmds, then: body.nodes, else: alt, source: p.action }
            : { kind: "range", over: cmds, body: body.nodes, else: alt, source: p.action },
        );
        continue;
      }
      if (["with", "define", "template", "block", "break", "continue"].includes(word))
        throw bad(source, `{{${word}}} is not supported (tsbuild's templates know if, else, range and end)`);
      nodes.push({ kind: "action", pipe: pipeline(p.action, source), source: p.action });
    }
    return { nodes, stop: undefined };
  };
  const { nodes } = parseList([]);
  return { source, execute: (data) => run(nodes, data, source) };
}

// ---- evaluation ----

/** A Go nil map: prints `map[]`, encodes as JSON null (docker's `{{.Config.Labels}}` of an image without labels). */
export class NilMap extends Map<string, never> {}
/** A Go nil slice: prints `[]`, encodes as JSON null. */
export class NilList extends Array<never> {}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return "nil";
  if (v instanceof Map) return "map";
  if (Array.isArray(v)) return "list";
  return typeof v === "object" ? "object" : typeof v;
}

function field(value: unknown, path: readonly string[], action: string, source: string): unknown {
  let v = value;
  for (const [i, name] of path.entries()) {
    if (v instanceof Map) {
      v = v.has(name) ? v.get(name) : undefined;
      continue;
    }
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (!keys.includes(name)) {
        const where =
          path
            .slice(0, i)
            .map((p) => "." + p)
            .join("") || ".";
        const near = suggest(name, keys);
        throw bad(
          source,
          `unknown field .${name} in {{${action}}}${where === "." ? "" : ` (in ${where})`}; the fields are ${keys.map((k) => "." + k).join(", ")}`,
          near ? `did you mean .${[...path.slice(0, i), near].join(".")}?` : undefined,
        );
      }
      v = (v as Record<string, unknown>)[name];
      continue;
    }
    throw bad(source, `cannot take .${name} of a ${typeName(v)} in {{${action}}}`);
  }
  return v;
}

/** Go's %v: `[a b]` for lists, `map[k:v]` (sorted keys) for maps, `{v1 v2}` for structs, `<no value>` for a missing key. */
export function goPrint(v: unknown): string {
  if (v === undefined) return "<no value>";
  if (v === null) return "<nil>";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (Array.isArray(v)) return `[${v.map(goPrint).join(" ")}]`;
  if (v instanceof Map)
    return `map[${[...v.keys()]
      .map(String)
      .sort()
      .map((k) => `${k}:${goPrint(v.get(k))}`)
      .join(" ")}]`;
  return `{${Object.values(v as Record<string, unknown>)
    .map(goPrint)
    .join(" ")}}`;
}

/** Go's encoding/json: Maps become objects with sorted keys, and <, >, & are escaped as \u003c, \u003e, \u0026. */
export function goJson(v: unknown): string {
  const plain = (x: unknown): unknown => {
    if (x instanceof NilMap || x instanceof NilList) return null;
    if (x instanceof Map) return Object.fromEntries([...x.entries()].sort(([a], [b]) => (String(a) < String(b) ? -1 : 1)).map(([k, y]) => [k, plain(y)]));
    if (Array.isArray(x)) return x.map(plain);
    if (x !== null && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, plain(y)]));
    return x === undefined ? null : x;
  };
  return (JSON.stringify(plain(v)) ?? "null").replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  return true;
}

function call(name: string, args: unknown[], action: string, source: string): unknown {
  const need = (n: number) => {
    if (args.length !== n) throw bad(source, `${name} takes ${n} argument${n === 1 ? "" : "s"}, got ${args.length} in {{${action}}}`);
  };
  const str = (v: unknown) => (typeof v === "string" ? v : goPrint(v));
  switch (name) {
    case "json":
      need(1);
      return goJson(args[0]);
    case "upper":
      need(1);
      return str(args[0]).toUpperCase();
    case "lower":
      need(1);
      return str(args[0]).toLowerCase();
    case "title":
      need(1);
      return str(args[0]).replace(/\b\w/g, (c) => c.toUpperCase());
    case "len": {
      need(1);
      const v = args[0];
      if (typeof v === "string" || Array.isArray(v)) return v.length;
      if (v instanceof Map) return v.size;
      throw bad(source, `len of a ${typeName(v)} in {{${action}}}`);
    }
    case "join": {
      need(2);
      if (!Array.isArray(args[0])) throw bad(source, `join needs a list first, got a ${typeName(args[0])} in {{${action}}}`);
      return args[0].map(str).join(str(args[1]));
    }
    case "split":
      need(2);
      return str(args[0]).split(str(args[1]));
    case "truncate":
      need(2);
      return [...str(args[0])].slice(0, Number(args[1])).join("");
    case "pad":
      need(3);
      return " ".repeat(Number(args[1])) + str(args[0]) + " ".repeat(Number(args[2]));
    case "index": {
      if (args.length < 2) throw bad(source, `index needs a value and at least one key in {{${action}}}`);
      let v = args[0];
      for (const k of args.slice(1)) {
        if (v instanceof Map) v = v.has(String(k)) ? v.get(String(k)) : "";
        else if (Array.isArray(v) && typeof k === "number") {
          if (k < 0 || k >= v.length) throw bad(source, `index ${k} out of range (the list has ${v.length}) in {{${action}}}`);
          v = v[k];
        } else throw bad(source, `cannot index a ${typeName(v)} with ${goPrint(k)} in {{${action}}}`);
      }
      return v;
    }
    case "print":
      return args.map(str).join("");
    case "println":
      return args.map(str).join(" ") + "\n";
    case "eq":
      if (args.length < 2) throw bad(source, `eq needs two values in {{${action}}}`);
      return args.slice(1).some((a) => a === args[0]);
    case "ne":
      need(2);
      return args[0] !== args[1];
    case "not":
      need(1);
      return !truthy(args[0]);
    case "and":
      return args.every(truthy) ? args[args.length - 1] : args.find((a) => !truthy(a));
    case "or":
      return args.find(truthy) ?? args[args.length - 1];
    default:
      throw bad(source, `unknown function ${name}`);
  }
}

function evalPipe(pipe: readonly Command[], dot: unknown, action: string, source: string): unknown {
  let piped: { value: unknown } | undefined;
  for (const cmd of pipe) {
    const [head, ...rest] = cmd as [Operand, ...Operand[]];
    const value = (o: Operand) => {
      if (o.kind === "func") throw bad(source, `${o.name} used as a value in {{${action}}}`);
      return o.kind === "literal" ? o.value : field(dot, o.path, action, source);
    };
    if (head.kind === "func") {
      const args = rest.map(value);
      if (piped) args.push(piped.value);
      piped = { value: call(head.name, args, action, source) };
    } else {
      if (rest.length > 0 || piped) throw bad(source, `${action} is not a function call; put the function first, as in {{json .Config}}`);
      piped = { value: value(head) };
    }
  }
  return piped?.value;
}

function run(nodes: readonly Node[], dot: unknown, source: string): string {
  let out = "";
  for (const n of nodes) {
    if (n.kind === "text") out += n.text;
    else if (n.kind === "action") out += goPrint(evalPipe(n.pipe, dot, n.source, source));
    else if (n.kind === "if") out += run(truthy(evalPipe(n.cond, dot, n.source, source)) ? n.then : n.else, dot, source);
    else {
      const over = evalPipe(n.over, dot, n.source, source);
      const items = Array.isArray(over) ? over : over instanceof Map ? [...over.keys()].sort().map((k) => over.get(k)) : undefined;
      if (items === undefined && over !== null && over !== undefined) throw bad(source, `range over a ${typeName(over)} in {{${n.source}}}`);
      if (!items || items.length === 0) out += run(n.else, dot, source);
      else for (const item of items) out += run(n.body, item, source);
    }
  }
  return out;
}

// ---- docker's format layer (cli/command/formatter) ----

/** What a `--format` value asks for: docker's default table, one JSON object per line, or a template (maybe a table). */
export type ListFormat = { kind: "default" } | { kind: "json" } | { kind: "template"; template: GoTemplate; table: boolean };

/** docker's rules: "" / "table" → the default table; "json"; "table TEMPLATE" → a header row and aligned columns. `\t`, `\n` are escapes. */
export function parseListFormat(format: string | undefined): ListFormat {
  if (format === undefined || format === "" || format.trim() === "table") return { kind: "default" };
  if (format.trim() === "json") return { kind: "json" };
  const table = format.startsWith("table");
  const body = (table ? format.slice("table".length) : format)
    .replace(/^ +| +$/g, "")
    .replace(/\\t/g, "\t")
    .replace(/\\n/g, "\n");
  return { kind: "template", template: parseGoTemplate(body), table };
}

/**
 * Renders rows as docker's formatter does: each row is the template's output plus a newline; a table starts with the
 * template run over `header` (field → column title) and aligns tab-separated cells (Go tabwriter: minwidth 10, padding 3).
 */
export function renderList(template: GoTemplate, table: boolean, rows: readonly unknown[], header: object): string {
  const body = rows.map((r) => template.execute(r) + "\n").join("");
  if (!table) return body;
  return tabulate(template.execute(header) + "\n" + body);
}

/** Go's text/tabwriter with docker's settings: tab-terminated cells padded to the column's width + 3, at least 10. */
export function tabulate(text: string): string {
  const lines = text.split("\n");
  const last = lines.pop(); // text ends with "\n": the last element is the empty rest
  const cells = lines.map((l) => l.split("\t"));
  // Columns align across consecutive lines that have that column (tabwriter's blocks); good enough with one block.
  const widths: number[] = [];
  for (const row of cells) row.slice(0, -1).forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  const out = cells.map((row) => row.map((c, i) => (i < row.length - 1 ? c.padEnd(Math.max((widths[i] ?? 0) + 3, 10)) : c)).join(""));
  return out.join("\n") + "\n" + (last ?? "");
}
