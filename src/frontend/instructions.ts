// Typed instructions: each keyword's flags validated and arguments given names. Values stay unexpanded;
// the solver expands them with the stage's variables.
import { DockerfileParseError } from "../errors.js";
import type { Heredoc, Instruction } from "./types.js";
import { tryJsonArrayOf } from "./json-args.js";
import { isHeredocWord } from "./heredoc.js";
import { argWordRanges, flagRange } from "./locate.js";

interface Base {
  src: Instruction;
}
export type TypedInstruction =
  | (Base & { kind: "FROM"; image: string; name?: string; platform?: string })
  | (Base & { kind: "RUN"; json: boolean; command: string[]; script: string; heredocs: Heredoc[]; mounts: string[]; network?: string; security?: string })
  | (Base & CopyFields & { kind: "COPY" | "ADD" })
  | (Base & { kind: "ENV" | "LABEL"; pairs: { key: string; value: string }[] })
  | (Base & { kind: "ARG"; args: { name: string; default?: string }[] })
  | (Base & { kind: "CMD" | "ENTRYPOINT"; json: boolean; args: string[] })
  | (Base & { kind: "SHELL"; args: string[] })
  | (Base & { kind: "WORKDIR"; path: string })
  | (Base & { kind: "USER"; user: string })
  | (Base & { kind: "EXPOSE"; ports: string[] })
  | (Base & { kind: "VOLUME"; paths: string[] })
  | (Base & { kind: "STOPSIGNAL"; signal: string })
  | (Base & { kind: "MAINTAINER"; name: string })
  | (Base & { kind: "ONBUILD"; trigger: Instruction; expression: string })
  | (Base & { kind: "HEALTHCHECK"; none: true })
  | (Base & HealthFields & { kind: "HEALTHCHECK"; none: false });

export interface CopyFields {
  sources: string[];
  dest: string;
  json: boolean;
  heredocs: Heredoc[];
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  checksum?: string;
  keepGitDir: boolean;
  unpack?: boolean;
}

export interface HealthFields {
  json: boolean;
  /** Exec form: the argv; shell form: [command]. */
  test: string[];
  /** Durations in nanoseconds, as Docker stores them. */
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

type FlagKind = "string" | "bool" | "list";
const FLAGS: Partial<Record<string, Record<string, FlagKind>>> = {
  FROM: { platform: "string" },
  RUN: { mount: "list", network: "string", security: "string" },
  COPY: { from: "string", chown: "string", chmod: "string", link: "bool", parents: "bool", exclude: "list" },
  ADD: {
    from: "string",
    chown: "string",
    chmod: "string",
    link: "bool",
    parents: "bool",
    exclude: "list",
    checksum: "string",
    "keep-git-dir": "bool",
    unpack: "bool",
  },
  HEALTHCHECK: { interval: "string", timeout: "string", "start-period": "string", "start-interval": "string", retries: "string" },
};

type FlagValues = Map<string, string | boolean | string[]>;

function unquote(v: string): string {
  return v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0] ? v.slice(1, -1) : v;
}

function parseFlags(i: Instruction): FlagValues {
  const allowed = FLAGS[i.keyword] ?? {};
  const out: FlagValues = new Map();
  for (const [index, raw] of i.flags.entries()) {
    const eq = raw.indexOf("=");
    const name = eq < 0 ? raw.slice(2) : raw.slice(2, eq);
    const value = eq < 0 ? undefined : unquote(raw.slice(eq + 1));
    const kind = allowed[name];
    const range = flagRange(i, index);
    if (!kind) {
      const known = Object.keys(allowed);
      throw new DockerfileParseError("UNKNOWN_FLAG", `unknown flag: --${name} for ${i.keyword}`, {
        range,
        hint: known.length ? `${i.keyword} accepts ${known.map((k) => `--${k}`).join(", ")}` : `${i.keyword} takes no flags`,
      });
    }
    if (kind === "bool") {
      if (value === undefined || value === "true") out.set(name, true);
      else if (value === "false") out.set(name, false);
      else throw new DockerfileParseError("BAD_FLAG_VALUE", `--${name} expects a boolean value, got ${JSON.stringify(value)}`, { range });
    } else {
      if (value === undefined || (value === "" && kind === "string"))
        throw new DockerfileParseError("BAD_FLAG_VALUE", `--${name} needs a value: --${name}=VALUE`, { range });
      if (kind === "list") out.set(name, [...((out.get(name) as string[] | undefined) ?? []), value]);
      else if (out.has(name)) throw new DockerfileParseError("DUPLICATE_FLAG", `--${name} given more than once`, { range });
      else out.set(name, value);
    }
  }
  return out;
}

const str = (f: FlagValues, n: string) => f.get(n) as string | undefined;
const bool = (f: FlagValues, n: string) => f.get(n) === true;
const list = (f: FlagValues, n: string) => (f.get(n) as string[] | undefined) ?? [];

// Octal as BuildKit reads it (strconv.ParseUint base 8): `--chmod=0` is mode 0000.
const CHMOD = /^(?:[0-7]{1,4}|(?:[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+)(?:,[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+)*)$/;

/** Go durations (time.ParseDuration): 300ms, 1.5h, 2h45m, -1s; returned in nanoseconds. */
export function parseGoDuration(text: string): number | undefined {
  const sign = text.startsWith("-") ? -1 : 1;
  const s = text.startsWith("-") || text.startsWith("+") ? text.slice(1) : text;
  if (s === "0") return 0;
  const units: Record<string, number> = { ns: 1, us: 1e3, "\u00b5s": 1e3, "\u03bcs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * (units[m[2] as string] as number);
    pos = re.lastIndex;
  }
  // Go rejects anything past int64 nanoseconds (about 292 years).
  if (pos !== s.length || pos === 0 || total > 9.223372036854776e18) return undefined;
  return sign * Math.round(total);
}

export function decodeInstruction(i: Instruction): TypedInstruction {
  const f = parseFlags(i);
  const a = i.args;
  const src = i;
  const one = () => (a[0] ?? "").trim();
  switch (i.keyword) {
    case "FROM": {
      const t: TypedInstruction = { kind: "FROM", src, image: a[0] as string };
      if (a.length === 3) t.name = (a[2] as string).toLowerCase();
      const p = str(f, "platform");
      if (p !== undefined) t.platform = p;
      return t;
    }
    case "RUN": {
      const t: TypedInstruction = {
        kind: "RUN",
        src,
        json: i.json,
        command: i.json ? a : [],
        script: i.json ? "" : a.join(" "),
        heredocs: i.heredocs,
        mounts: list(f, "mount"),
      };
      const net = str(f, "network");
      if (net !== undefined) {
        if (!["default", "none", "host"].includes(net))
          throw new DockerfileParseError("BAD_FLAG_VALUE", `--network=${net}: expected default, none or host`, { range: flagRange(i, "network") });
        t.network = net;
      }
      const sec = str(f, "security");
      if (sec !== undefined) {
        if (sec !== "sandbox" && sec !== "insecure")
          throw new DockerfileParseError("BAD_FLAG_VALUE", `--security=${sec}: expected sandbox or insecure`, { range: flagRange(i, "security") });
        t.security = sec;
      }
      for (const [k, m] of t.mounts.entries())
        if (!/^(?:[a-z-]+(?:=[^,]*)?)(?:,[a-z-]+(?:=[^,]*)?)*$/i.test(m))
          throw new DockerfileParseError("BAD_FLAG_VALUE", `--mount=${m}: expected comma-separated key=value options, e.g. type=cache,target=/root/.cache`, {
            range: flagRange(i, i.flags.map((fl, x) => [fl, x] as const).filter(([fl]) => fl.startsWith("--mount="))[k]?.[1] ?? -1),
          });
      return t;
    }
    case "COPY":
    case "ADD": {
      // Sources that are heredoc markers name heredoc bodies, the others are paths (BuildKit's parseSourcesAndDest).
      const dest = a[a.length - 1] as string;
      if (isHeredocWord(dest))
        throw new DockerfileParseError("BAD_HEREDOC", `${i.keyword} cannot accept a heredoc as a destination`, {
          range: argWordRanges(i).at(-1)?.range ?? i.range,
          hint: `the last argument of ${i.keyword} is where the files go: ${i.keyword} <<EOF /path/to/file`,
        });
      const sources = i.json || i.heredocs.length === 0 ? a.slice(0, -1) : a.slice(0, -1).filter((w) => !isHeredocWord(w));
      const t: TypedInstruction = {
        kind: i.keyword,
        src,
        sources,
        dest,
        json: i.json,
        heredocs: i.heredocs,
        link: bool(f, "link"),
        parents: bool(f, "parents"),
        exclude: list(f, "exclude"),
        keepGitDir: bool(f, "keep-git-dir"),
      };
      for (const [k, key] of [
        ["from", "from"],
        ["chown", "chown"],
        ["chmod", "chmod"],
        ["checksum", "checksum"],
      ] as const) {
        const v = str(f, k);
        if (v !== undefined) t[key] = v;
      }
      if (f.has("unpack")) t.unpack = bool(f, "unpack");
      if (t.chmod !== undefined && !t.chmod.includes("$") && !CHMOD.test(t.chmod))
        throw new DockerfileParseError("BAD_CHMOD", `invalid --chmod=${t.chmod}: use an octal mode like 755 or a symbolic one like u+x,g-w`, {
          range: flagRange(i, "chmod"),
        });
      return t;
    }
    case "ENV":
    case "LABEL": {
      const pairs: { key: string; value: string }[] = [];
      for (let k = 0; k + 1 < a.length; k += 2) pairs.push({ key: a[k] as string, value: a[k + 1] as string });
      return { kind: i.keyword, src, pairs };
    }
    case "ARG":
      return {
        kind: "ARG",
        src,
        args: a.map((w) => {
          const eq = w.indexOf("=");
          const name = eq < 0 ? w : w.slice(0, eq);
          // `ARG ${N}=v`: BuildKit expands the name when the ARG runs (ArgCommand.Expand); it is checked then.
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !/^[^\s=$"']+$/.test(name) && !/^[^\s="']*\$/.test(name))
            throw new DockerfileParseError("BAD_ARG", `invalid ARG name ${JSON.stringify(name)}`, {
              range: argWordRanges(i).find((x) => x.text === w)?.range ?? i.range,
            });
          return eq < 0 ? { name } : { name, default: w.slice(eq + 1) };
        }),
      };
    case "CMD":
    case "ENTRYPOINT":
      return { kind: i.keyword, src, json: i.json, args: a };
    case "SHELL":
      if (a.length === 0) throw new DockerfileParseError("ARITY", "SHELL requires at least one argument", { range: i.range });
      return { kind: "SHELL", src, args: a };
    case "WORKDIR":
      return { kind: "WORKDIR", src, path: one() };
    case "USER":
      return { kind: "USER", src, user: one() };
    case "EXPOSE":
      return { kind: "EXPOSE", src, ports: a };
    case "VOLUME":
      return { kind: "VOLUME", src, paths: a };
    case "STOPSIGNAL":
      return { kind: "STOPSIGNAL", src, signal: one() };
    case "MAINTAINER":
      return { kind: "MAINTAINER", src, name: one() };
    case "ONBUILD":
      return { kind: "ONBUILD", src, trigger: i.trigger as Instruction, expression: one() };
    case "HEALTHCHECK":
      return decodeHealthcheck(i, f);
  }
}

function decodeHealthcheck(i: Instruction, f: FlagValues): TypedInstruction {
  const rest = (i.args[0] ?? "").trim();
  const m = /^(\S+)\s*([\s\S]*)$/.exec(rest);
  const type = (m?.[1] ?? "").toUpperCase();
  if (type === "NONE") {
    if ((m?.[2] ?? "") !== "" || i.flags.length)
      throw new DockerfileParseError("BAD_HEALTHCHECK", "HEALTHCHECK NONE takes no other arguments", { range: argWordRanges(i)[1]?.range ?? flagRange(i, 0) });
    return { kind: "HEALTHCHECK", src: i, none: true };
  }
  if (type !== "CMD")
    throw new DockerfileParseError("BAD_HEALTHCHECK", `unknown type ${JSON.stringify(m?.[1] ?? "")} in HEALTHCHECK (try CMD)`, {
      range: argWordRanges(i)[0]?.range ?? i.range,
      hint: "HEALTHCHECK [OPTIONS] CMD command, or HEALTHCHECK NONE",
    });
  const cmd = (m?.[2] ?? "").trim();
  if (cmd === "") throw new DockerfileParseError("BAD_HEALTHCHECK", "HEALTHCHECK CMD needs a command", { range: i.range });
  const arr = tryJsonArrayOf(cmd);
  const t: TypedInstruction = { kind: "HEALTHCHECK", src: i, none: false, json: arr !== undefined, test: arr ? ["CMD", ...arr] : [cmd] };
  for (const [flag, key] of [
    ["interval", "interval"],
    ["timeout", "timeout"],
    ["start-period", "startPeriod"],
    ["start-interval", "startInterval"],
  ] as const) {
    const v = str(f, flag);
    if (v === undefined) continue;
    const ns = parseGoDuration(v);
    const range = flagRange(i, flag);
    if (ns === undefined) throw new DockerfileParseError("BAD_DURATION", `--${flag}=${v}: not a duration (use e.g. 30s, 1m30s)`, { range });
    if (ns < 0) throw new DockerfileParseError("BAD_DURATION", `--${flag}=${v} cannot be negative`, { range });
    if (ns !== 0 && ns < 1e6) throw new DockerfileParseError("BAD_DURATION", `--${flag} cannot be less than 1ms`, { range });
    t[key] = ns;
  }
  const r = str(f, "retries");
  if (r !== undefined) {
    if (!/^\d+$/.test(r)) throw new DockerfileParseError("BAD_FLAG_VALUE", `--retries=${r}: expected a whole number`, { range: flagRange(i, "retries") });
    t.retries = Number(r);
  }
  return t;
}
