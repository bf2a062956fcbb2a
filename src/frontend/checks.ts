// BuildKit's build checks (Dockerfile lint rules) over a parsed Dockerfile: pure, no image metadata.
// Rule names, messages and URLs follow BuildKit's linter/ruleset.go so output reads like `docker build --check`.
import { expandWordWithInfo } from "./expand.js";
import { editDistance } from "./edit-distance.js";
import type { Instruction, ParsedDockerfile, SourceRange } from "./types.js";

export interface CheckWarning {
  rule: string;
  message: string;
  range?: SourceRange;
  url: string;
}

export interface CheckResult {
  warnings: CheckWarning[];
  /** `# check=error=true`: the caller should fail when there are warnings. */
  errorOnWarnings: boolean;
}

export interface CheckOptions {
  buildArgs?: Record<string, string>;
  /** Replaces the `# check=` directive (BuildKit's BUILDKIT_DOCKERFILE_CHECK build arg does the same). */
  checkDirective?: string;
}

export interface CheckConfig {
  skipAll: boolean;
  skip: Set<string>;
  error: boolean;
}

export interface CheckRule {
  name: string;
  description: string;
}

/** The rules this module implements, in BuildKit's order. */
export const CHECK_RULES: readonly CheckRule[] = [
  { name: "StageNameCasing", description: "Stage names should be lowercase" },
  { name: "FromAsCasing", description: "The 'as' keyword should match the case of the 'from' keyword" },
  { name: "NoEmptyContinuation", description: "Empty continuation lines will become errors in a future release" },
  { name: "ConsistentInstructionCasing", description: "All commands within the Dockerfile should use the same casing (either upper or lower)" },
  { name: "DuplicateStageName", description: "Stage names should be unique" },
  { name: "ReservedStageName", description: "Reserved words should not be used as stage names" },
  { name: "JSONArgsRecommended", description: "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals" },
  { name: "MaintainerDeprecated", description: "The MAINTAINER instruction is deprecated, use a label instead to define an image author" },
  { name: "UndefinedArgInFrom", description: "FROM command must use declared ARGs" },
  {
    name: "WorkdirRelativePath",
    description: "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes",
  },
  { name: "UndefinedVar", description: "Variables should be defined before their use" },
  { name: "MultipleInstructionsDisallowed", description: "Multiple instructions of the same type should not be used in the same stage" },
  { name: "LegacyKeyValueFormat", description: "Legacy key/value format with whitespace separator should not be used" },
  { name: "SecretsUsedInArgOrEnv", description: "Sensitive data should not be used in the ARG or ENV commands" },
  { name: "ExposeProtoCasing", description: "Protocol in EXPOSE instruction should be lowercase" },
  {
    name: "ExposeInvalidFormat",
    description: "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release",
  },
];

/** Not a BuildKit rule: reported when the check directive itself cannot be read. */
export const INVALID_CHECK_DIRECTIVE = "InvalidCheckDirective";
const CHECK_DIRECTIVE_URL = "https://docs.docker.com/reference/dockerfile/#check";

/** `StageNameCasing` → `https://docs.docker.com/go/dockerfile/rule/stage-name-casing/`. */
export function ruleUrl(rule: string): string {
  const kebab = rule
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1-$2")
    .toLowerCase();
  return `https://docs.docker.com/go/dockerfile/rule/${kebab}/`;
}

/**
 * Parses `skip=A,B;error=true` like BuildKit's linter.ParseLintOptions, but never throws: each malformed part is
 * reported in `problems` and ignored, so one typo does not switch all checks off (or on).
 */
export function parseCheckDirective(raw: string | undefined): { config: CheckConfig; problems: string[] } {
  const config: CheckConfig = { skipAll: false, skip: new Set(), error: false };
  const problems: string[] = [];
  const text = (raw ?? "").trim();
  if (text === "") return { config, problems };
  for (const part of text.split(";")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq < 0) {
      problems.push(`invalid check option "${part.trim()}"`);
      continue;
    }
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "skip") {
      if (value === "all") config.skipAll = true;
      else for (const r of value.split(",")) if (r.trim() !== "") config.skip.add(r.trim());
    } else if (key === "error") {
      const b = parseGoBool(value);
      if (b === undefined) problems.push(`failed to parse check option "${part.trim()}": invalid boolean "${value}"`);
      else config.error = b;
    } else if (key === "experimental") {
      // BuildKit's opt-in for experimental rules; none of ours are experimental.
    } else {
      problems.push(`invalid check option "${key}"`);
    }
  }
  return { config, problems };
}

function parseGoBool(s: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
  return undefined;
}

/** `WARNING: Rule - url`, the message, then `file:line` when known — BuildKit's text layout without the code frame. */
export function formatCheckWarning(w: CheckWarning): string {
  const head = `WARNING: ${w.rule} - ${w.url}\n${w.message}`;
  return w.range ? `${head}\n${w.range.file}:${w.range.start.line}` : head;
}

// ARGs BuildKit defines for every build; usable in FROM without declaring them.
const PLATFORM_ARGS = ["BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT", "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT"];
// Always present in a build environment (PATH) or passed by the builder (proxy args), so never "undefined".
const ALWAYS_DEFINED = new Set(["PATH", ...["HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"].flatMap((n) => [n, n.toLowerCase()])]);
const RESERVED_STAGE_NAMES = new Set(["scratch", "context"]);
// BuildKit's isSecretKey: a token bounded by `_` or the ends of the name, unless an allow token also matches.
const SECRET_KEY = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const SECRET_ALLOW = /(?:_|^)(?:public)(?:_|$)/i;

interface StageScope {
  name?: string;
  /** ENV names set in this stage: a child stage (FROM <this>) inherits them. */
  envNames: Set<string>;
  envValues: Map<string, string>;
  workdirAbsolute: boolean;
  shellSet: boolean;
}

export function runChecks(parsed: ParsedDockerfile, opts: CheckOptions = {}): CheckResult {
  const buildArgs = opts.buildArgs ?? {};
  const directive = opts.checkDirective ?? ownValue(buildArgs, "BUILDKIT_DOCKERFILE_CHECK") ?? parsed.directives.check;
  const { config, problems } = parseCheckDirective(directive);
  const escape = parsed.directives.escape;
  const warnings: CheckWarning[] = [];
  const emit = (rule: string, message: string, range: SourceRange | undefined): void => {
    if (config.skipAll || config.skip.has(rule)) return;
    warnings.push(range ? { rule, message, range, url: ruleUrl(rule) } : { rule, message, url: ruleUrl(rule) });
  };

  for (const w of parsed.warnings) if (w.code === "NoEmptyContinuation") emit("NoEmptyContinuation", "Empty continuation line", w.range);
  checkInstructionCasing(parsed.instructions, emit);

  // Global scope: ARGs before the first FROM, with --build-arg overriding their defaults.
  const globalValues = new Map<string, string>();
  for (const a of PLATFORM_ARGS) globalValues.set(a, "");
  const globalNames = new Set<string>();
  let i = 0;
  const instrs = parsed.instructions;
  for (; i < instrs.length && instrs[i]?.keyword !== "FROM"; i++) {
    const instr = instrs[i] as Instruction;
    if (instr.keyword !== "ARG") continue;
    for (const { name, value } of argDeclarations(instr)) {
      checkSecret("ARG", name, instr, emit);
      let v = ownValue(buildArgs, name);
      if (v === undefined && value !== undefined) v = tryExpand(value, globalValues, escape)?.value;
      globalValues.set(name, v ?? "");
      globalNames.add(name);
    }
  }

  const stages = new Map<string, StageScope>();
  const seenStageNames = new Set<string>();
  while (i < instrs.length) {
    const from = instrs[i] as Instruction;
    i++;
    const body: Instruction[] = [];
    for (; i < instrs.length && instrs[i]?.keyword !== "FROM"; i++) body.push(instrs[i] as Instruction);

    const base = from.args[0] ?? "";
    const stageName = from.args.length >= 3 ? from.args[2] : undefined;
    checkFrom(from, base, stageName, seenStageNames, globalValues, globalNames, escape, emit);

    const parent = stages.get(base.toLowerCase());
    const scope: StageScope = {
      envNames: new Set(parent?.envNames),
      envValues: new Map(parent?.envValues),
      workdirAbsolute: parent?.workdirAbsolute ?? false,
      shellSet: parent?.shellSet ?? false,
    };
    if (stageName !== undefined) {
      scope.name = stageName.toLowerCase();
      stages.set(scope.name, scope);
    }
    checkStage(body, scope, globalValues, globalNames, buildArgs, escape, emit);
  }

  for (const p of problems) {
    // Reported even under skip=all: the directive that would skip it is the thing that is broken.
    warnings.push({ rule: INVALID_CHECK_DIRECTIVE, message: `Invalid check directive "${directive ?? ""}": ${p}`, url: CHECK_DIRECTIVE_URL });
  }
  warnings.sort((a, b) => (a.range?.start.line ?? 0) - (b.range?.start.line ?? 0) || (a.range?.start.column ?? 0) - (b.range?.start.column ?? 0));
  return { warnings, errorOnWarnings: config.error };
}

type Emit = (rule: string, message: string, range: SourceRange | undefined) => void;

/** The keyword exactly as written at the start of the logical line. */
function writtenKeyword(instr: Instruction): string {
  return /^\s*([A-Za-z]+)/.exec(instr.original)?.[1] ?? instr.keyword;
}

function isSelfConsistentCasing(s: string): boolean {
  return s === s.toLowerCase() || s === s.toUpperCase();
}

function checkInstructionCasing(instrs: readonly Instruction[], emit: Emit): void {
  // Mixed-case words (`Run`) never count towards the majority and are always reported; ties go to upper case.
  let lower = 0;
  let upper = 0;
  for (const instr of instrs) {
    const w = writtenKeyword(instr);
    if (!isSelfConsistentCasing(w)) continue;
    if (w === w.toLowerCase()) lower++;
    else upper++;
  }
  const majorityLower = lower > upper;
  const casing = majorityLower ? "lowercase" : "uppercase";
  for (const instr of instrs) {
    const w = writtenKeyword(instr);
    const wrong = !isSelfConsistentCasing(w) || (majorityLower ? w !== w.toLowerCase() : w !== w.toUpperCase());
    if (wrong) emit("ConsistentInstructionCasing", `Command '${w}' should match the case of the command majority (${casing})`, instr.range);
  }
}

function checkFrom(
  from: Instruction,
  base: string,
  stageName: string | undefined,
  seen: Set<string>,
  globalValues: ReadonlyMap<string, string>,
  globalNames: ReadonlySet<string>,
  escape: string,
  emit: Emit,
): void {
  if (stageName !== undefined) {
    const asWord = from.args[1] ?? "as";
    const fromWord = writtenKeyword(from);
    // A mixed-case FROM is ConsistentInstructionCasing's business, not this rule's.
    if (isSelfConsistentCasing(fromWord)) {
      const fromLower = fromWord === fromWord.toLowerCase();
      const asOk = fromLower ? asWord === asWord.toLowerCase() : asWord === asWord.toUpperCase();
      if (!asOk) emit("FromAsCasing", `'${asWord}' and '${fromWord}' keywords' casing do not match`, from.range);
    }
    if (stageName !== stageName.toLowerCase()) emit("StageNameCasing", `Stage name '${stageName}' should be lowercase`, from.range);
    const lower = stageName.toLowerCase();
    if (RESERVED_STAGE_NAMES.has(lower)) emit("ReservedStageName", `Stage name should not use the same name as reserved stage "${lower}"`, from.range);
    if (seen.has(lower)) emit("DuplicateStageName", `Duplicate stage name "${lower}", stage names should be unique`, from.range);
    seen.add(lower);
  }

  const words = [base];
  for (const f of from.flags) {
    const m = /^--platform=(.*)$/.exec(f);
    if (m) words.push(m[1] as string);
  }
  const candidates = [...globalNames, ...PLATFORM_ARGS];
  const reported = new Set<string>();
  for (const word of words) {
    const r = tryExpand(word, globalValues, escape);
    if (!r) continue;
    for (const name of r.unset) {
      if (reported.has(name) || onlyWithFallback(word, name)) continue;
      reported.add(name);
      emit("UndefinedArgInFrom", `FROM argument '${name}' is not declared${didYouMean(name, candidates, "")}`, from.range);
    }
  }
}

function checkStage(
  body: readonly Instruction[],
  scope: StageScope,
  globalValues: ReadonlyMap<string, string>,
  globalNames: ReadonlySet<string>,
  buildArgs: Readonly<Record<string, string>>,
  escape: string,
  emit: Emit,
): void {
  // The base image's environment is unknown here, so a variable counts as defined if the Dockerfile declares it
  // anywhere in this stage, its parent stages or the global scope; only names declared nowhere are reported.
  const declaredAnywhere = new Set<string>([...globalNames, ...scope.envNames, ...ALWAYS_DEFINED]);
  for (const instr of body) {
    if (instr.keyword === "ARG") for (const d of argDeclarations(instr)) declaredAnywhere.add(d.name);
    if (instr.keyword === "ENV") for (let k = 0; k < instr.args.length; k += 2) declaredAnywhere.add(instr.args[k] as string);
  }
  // What expansion sees at each point: stage ARGs and ENVs so far (global ARGs only once re-declared).
  const values = new Map<string, string>(scope.envValues);
  const lastOfKind = new Map<string, Instruction>();

  const undefinedVars = (instr: Instruction, words: readonly string[]): void => {
    const reported = new Set<string>();
    for (const word of words) {
      if (!word.includes("$")) continue;
      const r = tryExpand(word, values, escape);
      if (!r) continue;
      for (const name of r.unset) {
        if (reported.has(name) || declaredAnywhere.has(name) || onlyWithFallback(word, name)) continue;
        reported.add(name);
        emit("UndefinedVar", `Usage of undefined variable '$${name}'${didYouMean(name, [...values.keys(), ...declaredAnywhere], "$")}`, instr.range);
      }
    }
  };

  for (const instr of body) {
    switch (instr.keyword) {
      case "MAINTAINER":
        emit("MaintainerDeprecated", "Maintainer instruction is deprecated in favor of using label", instr.range);
        break;
      case "CMD":
      case "ENTRYPOINT":
        // A custom SHELL means the shell form is deliberate (BuildKit skips the rule when the image sets Shell).
        if (!instr.json && !scope.shellSet)
          emit("JSONArgsRecommended", `JSON arguments recommended for ${instr.keyword} to prevent unintended behavior related to OS signals`, instr.range);
        break;
      case "SHELL":
        scope.shellSet = true;
        break;
      case "ARG":
        for (const { name, value } of argDeclarations(instr)) {
          checkSecret("ARG", name, instr, emit);
          if (value !== undefined) undefinedVars(instr, [value]);
          // --build-arg wins; a re-declared global ARG without a default takes the global value.
          const v = ownValue(buildArgs, name) ?? (value !== undefined ? tryExpand(value, values, escape)?.value : globalValues.get(name));
          values.set(name, v ?? "");
        }
        break;
      case "ENV":
      case "LABEL": {
        if (isLegacyKeyValue(instr, escape))
          emit("LegacyKeyValueFormat", `"${instr.keyword} key=value" should be used instead of legacy "${instr.keyword} key value" format`, instr.range);
        undefinedVars(instr, instr.args);
        if (instr.keyword === "ENV") {
          // All pairs of one ENV see the environment from before it, as in Docker.
          const before = new Map(values);
          for (let k = 0; k + 1 < instr.args.length; k += 2) {
            const name = instr.args[k] as string;
            checkSecret("ENV", name, instr, emit);
            values.set(name, tryExpand(instr.args[k + 1] as string, before, escape)?.value ?? "");
            scope.envNames.add(name);
            scope.envValues.set(name, values.get(name) ?? "");
          }
        }
        break;
      }
      case "COPY":
      case "ADD": {
        const flagValues = instr.flags.flatMap((f) => /^--(?:chown|chmod)=(.*)$/.exec(f)?.slice(1) ?? []);
        undefinedVars(instr, [...flagValues, ...instr.args]);
        break;
      }
      case "USER":
      case "STOPSIGNAL":
      case "VOLUME":
        undefinedVars(instr, instr.args);
        break;
      case "WORKDIR": {
        undefinedVars(instr, instr.args);
        const raw = instr.args[0] ?? "";
        const r = tryExpand(raw, values, escape);
        // With an unknown variable in it the path cannot be judged.
        if (r && r.unset.length === 0) {
          if (isAbsolutePath(r.value)) scope.workdirAbsolute = true;
          else if (!scope.workdirAbsolute)
            emit("WorkdirRelativePath", `Relative workdir "${r.value}" can have unexpected results if the base image changes`, instr.range);
        }
        break;
      }
      case "EXPOSE":
        undefinedVars(instr, instr.args);
        for (const word of instr.args) {
          const r = tryExpand(word, values, escape);
          const port = r && r.unset.length === 0 ? r.value : word;
          const slash = port.indexOf("/");
          const proto = slash >= 0 ? port.slice(slash + 1) : "";
          if (proto !== proto.toLowerCase()) emit("ExposeProtoCasing", `Defined protocol '${port}' in EXPOSE instruction should be lowercase`, instr.range);
          if ((slash >= 0 ? port.slice(0, slash) : port).includes(":"))
            emit("ExposeInvalidFormat", `EXPOSE instruction should not define an IP address or host-port mapping, found '${port}'`, instr.range);
        }
        break;
      default:
        break;
    }
    if (instr.keyword === "CMD" || instr.keyword === "ENTRYPOINT" || instr.keyword === "HEALTHCHECK") {
      // Only the last one takes effect, so the earlier ones are the mistake.
      const prev = lastOfKind.get(instr.keyword);
      if (prev)
        emit(
          "MultipleInstructionsDisallowed",
          `Multiple ${instr.keyword} instructions should not be used in the same stage because only the last one will be used`,
          prev.range,
        );
      lastOfKind.set(instr.keyword, instr);
    }
  }
}

/** A plain record lookup that ignores inherited keys such as `constructor`. */
function ownValue(rec: Readonly<Record<string, string>>, key: string): string | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

function checkSecret(kind: "ARG" | "ENV", name: string, instr: Instruction, emit: Emit): void {
  if (SECRET_KEY.test(name) && !SECRET_ALLOW.test(name))
    emit("SecretsUsedInArgOrEnv", `Do not use ARG or ENV instructions for sensitive data (${kind} "${name}")`, instr.range);
}

/** `ARG a=1 b` → [{a, "1"}, {b}]; the default stays unexpanded. */
function argDeclarations(instr: Instruction): { name: string; value?: string }[] {
  return instr.args.map((w) => {
    const eq = w.indexOf("=");
    return eq < 0 ? { name: w } : { name: w.slice(0, eq), value: w.slice(eq + 1) };
  });
}

function tryExpand(word: string, env: ReadonlyMap<string, string>, escape: string): { value: string; unset: string[] } | undefined {
  try {
    return expandWordWithInfo(word, env, { escape });
  } catch {
    // A bad substitution is the build's error to report, not a lint finding.
    return undefined;
  }
}

/**
 * True when every reference to `name` in `word` supplies its own fallback (`${name:-x}`, `${name-x}`, `${name:+x}`,
 * `${name?msg}`...): the author has handled the unset case on purpose.
 */
function onlyWithFallback(word: string, name: string): boolean {
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const bare = new RegExp(`\\$(?:${esc}(?![\\p{L}\\p{Nd}_])|\\{${esc}[}#%/])`, "u");
  const fallback = new RegExp(`\\$\\{${esc}:?[-+?=]`, "u");
  return fallback.test(word) && !bare.test(word);
}

function isAbsolutePath(p: string): boolean {
  return p.startsWith("/") || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith("\\");
}

/**
 * ENV/LABEL written as `KEY value` rather than `KEY=value`: the first word after the keyword has no `=`.
 * Read from `original` because args look the same for both forms.
 */
function isLegacyKeyValue(instr: Instruction, escape: string): boolean {
  const text = instr.original.replace(/^\s*[A-Za-z]+/, "");
  let i = 0;
  // Skip blanks and line continuations (escape + newline) before the first word.
  for (;;) {
    const c = text[i];
    if (c === " " || c === "\t" || c === "\n" || c === "\r") i++;
    else if (c === escape && /^[ \t]*\r?\n/.test(text.slice(i + 1))) i += 1 + (/^[ \t]*\r?\n/.exec(text.slice(i + 1))?.[0].length ?? 0);
    else break;
  }
  let quote: string | undefined;
  for (; i < text.length; i++) {
    const c = text[i] as string;
    if (quote === undefined && /\s/.test(c)) break;
    if (c === escape && quote !== "'") {
      i++;
      continue;
    }
    if (quote === undefined && (c === '"' || c === "'")) quote = c;
    else if (c === quote) quote = undefined;
    else if (c === "=" && quote === undefined) return false;
  }
  return true;
}

/** ` (did you mean $X?)` for the closest candidate, as BuildKit's suggest.Search does (case-insensitive). */
function didYouMean(name: string, candidates: readonly string[], prefix: string): string {
  const target = name.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of new Set(candidates)) {
    if (c === name) continue;
    const d = editDistance(target, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  // Close enough to be a typo: at most 2 edits, and fewer than half the name.
  if (best === undefined || bestD > 2 || bestD * 2 >= name.length) return "";
  return ` (did you mean ${prefix}${best}?)`;
}
