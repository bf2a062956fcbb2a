// The frontend's data model: source positions, parsed instructions and stages.
// Pure data; produced by parse.ts and consumed by the solver.

// Source positions live in a leaf module so errors and progress can carry them without importing the frontend.
export type { Position, SourceRange } from "../source-range.js";
import type { SourceRange } from "../source-range.js";

export interface Heredoc {
  /** Delimiter word, e.g. "EOF". */
  name: string;
  /** Body, without the terminating delimiter line. Tabs already stripped for <<-. */
  content: string;
  /** False when the delimiter was quoted (no variable expansion in the body). */
  expand: boolean;
  /** True for <<- (leading tabs stripped). */
  chomp: boolean;
  /** File descriptor prefix (e.g. 3<<EOF), if any. */
  fd?: number;
}

/** One logical Dockerfile line, before variable expansion. */
export interface Instruction {
  /** Upper case: "RUN", "COPY", ... */
  keyword: Keyword;
  /** Raw flags as written: "--from=build". */
  flags: string[];
  /** Exec form: the array; shell form: [command]; ENV/LABEL: k, v, k, v ...; others: whitespace-split words. */
  args: string[];
  /** Exec (JSON) form. */
  json: boolean;
  heredocs: Heredoc[];
  /** The logical line as written (continuations joined). */
  original: string;
  range: SourceRange;
  /** ONBUILD carries the trigger instruction here. */
  trigger?: Instruction;
  /**
   * The comment lines directly above the instruction (text after `#`, trimmed), when there are any: where a stage's
   * or an ARG's description comes from (`# NAME description`). Not part of `parse --json`.
   */
  comments?: string[];
}

/**
 * An instruction as BuildKit's parser leaves it, before the instruction-level checks: the keyword may be unknown
 * (then `args` is empty) and the arguments need not fit the instruction. What `tsbuild parse` prints.
 */
export interface SyntaxInstruction extends Omit<Instruction, "keyword" | "trigger"> {
  /** Upper case, known or not. */
  keyword: string;
  trigger?: SyntaxInstruction;
}

export interface SyntaxTree extends Omit<ParsedDockerfile, "instructions"> {
  instructions: SyntaxInstruction[];
}

export const KEYWORDS = [
  "ADD",
  "ARG",
  "CMD",
  "COPY",
  "ENTRYPOINT",
  "ENV",
  "EXPOSE",
  "FROM",
  "HEALTHCHECK",
  "LABEL",
  "MAINTAINER",
  "ONBUILD",
  "RUN",
  "SHELL",
  "STOPSIGNAL",
  "USER",
  "VOLUME",
  "WORKDIR",
] as const;
export type Keyword = (typeof KEYWORDS)[number];

export interface Directives {
  syntax?: string;
  /** "\\" (default) or "`". */
  escape: string;
  /** Raw value of `# check=`. */
  check?: string;
}

export interface Warning {
  code: string;
  message: string;
  range?: SourceRange;
}

export interface ParsedDockerfile {
  file: string;
  directives: Directives;
  instructions: Instruction[];
  warnings: Warning[];
}

export interface Stage {
  index: number;
  /** Lower-cased stage name from `AS name`. */
  name?: string;
  /** Base image or stage reference, before expansion. */
  base: string;
  platform?: string;
  /** The FROM instruction itself. */
  from: Instruction;
  /** Instructions after FROM, up to the next FROM. */
  instructions: Instruction[];
  range: SourceRange;
}

export interface StagedDockerfile {
  /** ARG instructions before the first FROM. */
  globalArgs: Instruction[];
  stages: Stage[];
}
