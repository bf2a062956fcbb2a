// parseSyntax rejects only what BuildKit's parser rejects; everything else is an instruction-level error that
// parseDockerfile (check, build) reports. Table over the fixtures/parser/err-* cases, each classified by where
// BuildKit (frontend/dockerfile/parser vs instructions) raises it. Checked against Docker 20.10: its instruction-level
// errors read "dockerfile parse error line N: ...", its parser-level ones carry no such prefix.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseDockerfile, parseSyntax } from "../../src/frontend/parse.js";
import { parseResultToJson } from "../../src/frontend/parse-json.js";
import { planBuild } from "../../src/frontend/plan.js";
import { TsbuildError } from "../../src/errors.js";

const ROOT = join(import.meta.dirname, "../../fixtures/parser");

/** Parser-level: BuildKit's parser.Parse fails on these. */
const PARSER_ERRORS: Record<string, string> = {
  "err-bad-escape": "INVALID_ESCAPE",
  "err-duplicate-directive": "DUPLICATE_DIRECTIVE",
  "err-empty": "EMPTY_DOCKERFILE",
  "err-env-legacy-one": "ARITY",
  "err-env-no-equals": "BAD_KEY_VALUE",
  "err-long-line": "LINE_TOO_LONG",
  "err-unterminated-heredoc": "UNTERMINATED_HEREDOC",
};

/** Instruction-level (or build-plan-level): the parser accepts them. */
const INSTRUCTION_ERRORS = [
  "err-bad-chmod",
  "err-bad-duration",
  "err-bad-link",
  "err-copy-one-arg",
  "err-duplicate-stage",
  "err-from-empty",
  "err-from-missing-name",
  "err-from-not-as",
  "err-healthcheck-type",
  "err-no-from",
  "err-onbuild-from",
  "err-onbuild-maintainer",
  "err-onbuild-onbuild",
  "err-reserved-stage",
  "err-shell-not-json",
  "err-stage-self",
  "err-stopsignal-two",
  "err-unknown-flag",
  "err-unknown-instruction",
  "err-workdir-empty",
];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof TsbuildError) return e.code;
    throw e;
  }
}

const dockerfile = (name: string) => readFileSync(join(ROOT, name, "Dockerfile"));

describe("parseSyntax: parser-level errors only", () => {
  for (const [name, code] of Object.entries(PARSER_ERRORS))
    it(`${name}: the parser rejects it (${code})`, () => {
      expect(codeOf(() => parseSyntax(dockerfile(name)))).toBe(code);
    });
  for (const name of INSTRUCTION_ERRORS)
    it(`${name}: the parser accepts it, the instruction check does not`, () => {
      const tree = parseSyntax(dockerfile(name));
      expect(() => parseResultToJson(tree)).not.toThrow();
      const fixture = JSON.parse(readFileSync(join(ROOT, name, "error.json"), "utf8")) as { code: string };
      expect(codeOf(() => planBuild(parseDockerfile(dockerfile(name)), { platform: { os: "linux", architecture: "amd64" } }))).toBe(fixture.code);
    });

  it("classifies every err-* fixture", () => {
    const all = Object.keys(PARSER_ERRORS).concat(INSTRUCTION_ERRORS).sort();
    const fixtures = readdirNames().filter((n) => n.startsWith("err-"));
    expect(all).toEqual(fixtures);
  });

  it.each([
    ["CMD before FROM", "CMD echo\nFROM a\n", "CMD", ["echo"]],
    ["ADD with one argument", "FROM a\nADD x\n", "ADD", ["x"]],
    ["an unknown flag", "FROM a\nRUN --frob=1 true\n", "RUN", ["true"]],
    ["an unknown instruction (no arguments, as BuildKit's parseIgnore)", "FROM a\nFRM x y\n", "FRM", []],
    ["SHELL in shell form", "FROM a\nSHELL /bin/sh -c\n", "SHELL", ["/bin/sh -c"]],
    ["ENV with a blank name", "FROM a\nENV =x\n", "ENV", ["", "x"]],
    ["ONBUILD without a trigger", "FROM a\nONBUILD\n", "ONBUILD", []],
    ["FROM with two words", "FROM a b\n", "FROM", ["a", "b"]],
  ])("keeps %s in the tree", (_what, text, keyword, args) => {
    const tree = parseSyntax(text);
    const i = tree.instructions.find((x) => x.keyword === keyword);
    expect(i?.args).toEqual(args);
    expect(codeOf(() => planBuild(parseDockerfile(text), { platform: { os: "linux", architecture: "amd64" } }))).toBeDefined();
  });

  // BuildKit's parseStringsWhitespaceDelimited vs parseWords: checked with Docker 20.10 (`COPY "a b" /d` fails on `"a`).
  it.each([
    ['COPY "a b" /d/', ['"a', 'b"', "/d/"]],
    ["ADD  a\tb   c", ["a", "b", "c"]],
    ["VOLUME 'x y'", ["'x", "y'"]],
    ['EXPOSE "80" 443', ['"80"', "443"]],
    ['ARG A="x y" B', ['A="x y"', "B"]],
    ['ENV A="x y" B=1', ["A", '"x y"', "B", "1"]],
  ])("%s → %j", (line, args) => {
    expect(parseSyntax(`FROM a\n${line}\n`).instructions[1]?.args).toEqual(args);
  });

  it("lists stages from the FROM lines without checking them", () => {
    const json = parseResultToJson(parseSyntax("CMD x\nFROM a AS One\nRUN y\nFROM b AS one\nFROM\n")) as { stages: unknown[] };
    expect(json.stages).toEqual([
      { index: 0, name: "one", base: "a", platform: null, instructionCount: 1 },
      { index: 1, name: "one", base: "b", platform: null, instructionCount: 0 },
      { index: 2, name: null, base: "", platform: null, instructionCount: 0 },
    ]);
  });

  it.each([
    ["a JSON array of non-strings", "FROM a\nRUN [1]\n", "BAD_JSON"],
    ["LABEL in legacy form without a value", "FROM a\nLABEL onlykey\n", "ARITY"],
    // The line does not lex (unclosed quote), so BuildKit finds no heredoc on it: the next line is an instruction.
    ["a heredoc delimiter that does not lex", "FROM a\nRUN <<'EOF\necho\n", undefined],
  ])("rejects or accepts %s as BuildKit's parser does", (_what, text, code) => {
    expect(codeOf(() => parseSyntax(text))).toBe(code);
  });
});

function readdirNames(): string[] {
  return readdirSync(ROOT).sort();
}
