// A small declarative flag parser: `--name=value`, `--name value`, `-n value`, `-af` (grouped short flags),
// repeated list flags, booleans; an unknown flag gets a "did you mean".
import { UsageError } from "../errors.js";
import { suggest } from "../util/suggest.js";

export type FlagType = "string" | "boolean" | "list";
export interface FlagSpec {
  name: string;
  short?: string;
  type: FlagType;
  /** What the value is, for help text. */
  value?: string;
  help: string;
}

export interface ParsedArgs {
  flags: Map<string, string | boolean | string[]>;
  positionals: string[];
}

export interface ParseOptions {
  /** Flags end at the first positional, which with everything after it is positional (`run IMAGE CMD -x`, as docker). */
  stopAtPositional?: boolean;
}

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], command: string, opts: ParseOptions = {}): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short as string, s]));
  const flags = new Map<string, string | boolean | string[]>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let spec: FlagSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
      spec = byName.get(name);
      if (!spec) throw unknownFlag(`--${name}`, suggest(name, [...byName.keys()]), command);
    } else if (arg.startsWith("-") && arg.length > 1) {
      const eq = arg.indexOf("=");
      const name = eq >= 0 ? arg.slice(1, eq) : arg.slice(1);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
      spec = byShort.get(name);
      // `-af` = `-a -f`, as docker (cobra) reads it: leading boolean short flags, the last one may take a value.
      const group = [...name].map((c) => byShort.get(c));
      if (!spec && name.length > 1 && group.every((g, j) => g !== undefined && (g.type === "boolean" || j === group.length - 1))) {
        for (const g of group.slice(0, -1)) flags.set((g as FlagSpec).name, true);
        spec = group[group.length - 1] as FlagSpec;
      }
      // `-tag` for `--tag`: a long name written with one dash.
      if (!spec) throw unknownFlag(`-${name}`, byName.has(name) ? name : name.length > 2 ? suggest(name, [...byName.keys()]) : undefined, command);
    } else if (opts.stopAtPositional) {
      positionals.push(...argv.slice(i));
      break;
    } else {
      positionals.push(arg);
      continue;
    }
    if (spec.type === "boolean") {
      if (inline === undefined) flags.set(spec.name, true);
      else if (inline === "true" || inline === "false") flags.set(spec.name, inline === "true");
      else throw new UsageError("BAD_FLAG_VALUE", `--${spec.name} takes true or false, not ${JSON.stringify(inline)}`);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      const needs = `flag --${spec.name} needs a value${spec.value ? ` (${spec.value})` : ""}`;
      if (next === undefined) throw new UsageError("MISSING_FLAG_VALUE", needs);
      // `-o --quiet`: the value was forgotten and the next flag would be taken as it.
      if (isKnownFlag(next, byName, byShort))
        throw new UsageError("MISSING_FLAG_VALUE", `${needs}, but is followed by the flag ${next}`, {
          hint: `write --${spec.name}=VALUE if the value really starts with '-'`,
        });
      value = next;
      i++;
    }
    if (spec.type === "list") {
      const prev = flags.get(spec.name);
      flags.set(spec.name, [...(Array.isArray(prev) ? prev : []), value]);
    } else {
      // The last value wins, as in docker/buildx (cobra): CI scripts append overrides to a common command line.
      flags.set(spec.name, value);
    }
  }
  return { flags, positionals };
}

function unknownFlag(flag: string, near: string | undefined, command: string): UsageError {
  const help = `run \`tsbuild ${command} --help\` for the flags it takes`;
  return new UsageError("UNKNOWN_FLAG", `unknown flag ${flag} for \`tsbuild ${command}\``, { hint: near ? `did you mean --${near}? (${help})` : help });
}

function isKnownFlag(arg: string, byName: Map<string, FlagSpec>, byShort: Map<string, FlagSpec>): boolean {
  if (arg.startsWith("--")) return byName.has(arg.slice(2).split("=")[0] as string);
  return arg.startsWith("-") && arg.length > 1 && byShort.has(arg.slice(1).split("=")[0] as string);
}

export function flagString(p: ParsedArgs, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === "string" ? v : undefined;
}
export function flagList(p: ParsedArgs, name: string): string[] {
  const v = p.flags.get(name);
  return Array.isArray(v) ? v : [];
}
export function flagBool(p: ParsedArgs, name: string): boolean {
  return p.flags.get(name) === true;
}

export function helpText(usage: string, summary: string, specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const left = `${s.short ? `-${s.short}, ` : "    "}--${s.name}${s.value ? ` ${s.value}` : ""}`;
    return `  ${left.padEnd(34)} ${s.help}`;
  });
  return `Usage: ${usage}\n\n${summary}\n${rows.length ? `\nFlags:\n${rows.join("\n")}\n` : ""}`;
}

/** `key=value,key2=value2` as used by --output and --secret. */
export function parseCsvKeyValues(spec: string, flag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of spec.split(",")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) throw new UsageError("BAD_FLAG_VALUE", `${flag}: expected key=value, got ${JSON.stringify(part)} in ${JSON.stringify(spec)}`);
    out.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1));
  }
  return out;
}
