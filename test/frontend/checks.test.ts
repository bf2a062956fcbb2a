// Build checks, table-driven: each case is a Dockerfile and the [rule, line] pairs (or messages) it must produce.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { parseDockerfile } from "../../src/frontend/parse.js";
import { formatCheckWarning, parseCheckDirective, ruleUrl, runChecks, type CheckOptions } from "../../src/frontend/checks.js";
import type { Instruction, Keyword, ParsedDockerfile } from "../../src/frontend/types.js";
import type { CliIO } from "../../src/cli/context.js";

const check = (text: string, opts?: CheckOptions) => runChecks(parseDockerfile(text, { file: "Dockerfile" }), opts);
/** [rule, line] pairs, only for the rules named (all rules when none). */
const found = (text: string, rules?: string[], opts?: CheckOptions) =>
  check(text, opts)
    .warnings.filter((w) => !rules || rules.includes(w.rule))
    .map((w): [string, number | undefined] => [w.rule, w.range?.start.line]);
const messages = (text: string, rule: string) =>
  check(text)
    .warnings.filter((w) => w.rule === rule)
    .map((w) => w.message);

type Case = [name: string, dockerfile: string, expected: [string, number][]];

function table(rule: string, cases: Case[]): void {
  describe(rule, () => {
    it.each(cases)("%s", (_name, text, expected) => {
      expect(found(text, [rule])).toEqual(expected);
    });
  });
}

table("StageNameCasing", [
  ["upper-case stage name", "FROM alpine AS Builder\n", [["StageNameCasing", 1]]],
  ["lower-case stage name", "FROM alpine AS builder\n", []],
  ["no stage name", "FROM alpine\n", []],
]);

table("FromAsCasing", [
  ["FROM ... as", "FROM alpine as builder\n", [["FromAsCasing", 1]]],
  ["from ... AS", "from alpine AS builder\n", [["FromAsCasing", 1]]],
  ["FROM ... AS", "FROM alpine AS builder\n", []],
  ["from ... as", "from alpine as builder\n", []],
  ["mixed-case From is left to ConsistentInstructionCasing", "From alpine as builder\n", []],
  ["second stage", "FROM a AS x\n\nFROM b as y\n", [["FromAsCasing", 3]]],
]);

table("DuplicateStageName", [
  ["same name twice", "FROM a AS x\nFROM b AS x\n", [["DuplicateStageName", 2]]],
  ["differs only in case", "FROM a AS x\nFROM b AS x\nFROM c AS y\n", [["DuplicateStageName", 2]]],
  ["unique names", "FROM a AS x\nFROM b AS y\n", []],
]);

table("ReservedStageName", [
  ["scratch", "FROM alpine AS scratch\n", [["ReservedStageName", 1]]],
  ["context", "FROM alpine AS context\n", [["ReservedStageName", 1]]],
  ["FROM scratch is fine", "FROM scratch AS base\n", []],
]);

table("JSONArgsRecommended", [
  ["shell-form CMD", "FROM a\nCMD echo hi\n", [["JSONArgsRecommended", 2]]],
  ["shell-form ENTRYPOINT", "FROM a\nENTRYPOINT my-program start\n", [["JSONArgsRecommended", 2]]],
  ["exec form", 'FROM a\nENTRYPOINT ["my-program", "start"]\nCMD ["x"]\n', []],
  ["custom SHELL makes shell form deliberate", 'FROM a\nSHELL ["/bin/bash", "-c"]\nCMD echo hi\n', []],
  ["custom SHELL is inherited from the parent stage", 'FROM a AS b\nSHELL ["/bin/bash", "-c"]\nFROM b\nCMD echo hi\n', []],
  ["RUN shell form is fine", "FROM a\nRUN echo hi\n", []],
]);

table("MaintainerDeprecated", [
  ["MAINTAINER", "FROM a\nMAINTAINER me@example.com\n", [["MaintainerDeprecated", 2]]],
  ["LABEL", 'FROM a\nLABEL org.opencontainers.image.authors="me@example.com"\n', []],
]);

table("UndefinedArgInFrom", [
  ["undeclared", "FROM node:22${VARIANT} AS jsbuilder\n", [["UndefinedArgInFrom", 1]]],
  ["declared with a default", 'ARG VARIANT="-alpine3.20"\nFROM node:22${VARIANT} AS jsbuilder\n', []],
  ["declared without a default", "ARG VARIANT\nFROM node:22${VARIANT}\n", []],
  ["predefined platform args", "FROM --platform=$BUILDPLATFORM golang:$TARGETARCH\n", []],
  ["in --platform", "FROM --platform=$PLATFROM alpine\n", [["UndefinedArgInFrom", 1]]],
  ["declared after FROM is too late", "FROM alpine:$V\nARG V=1\n", [["UndefinedArgInFrom", 1]]],
  ["fallback in ${V:-x}", "FROM ${BASE:-alpine}\n", []],
  ["reported once per name", "FROM $X:$X\n", [["UndefinedArgInFrom", 1]]],
  ["second stage", "ARG A=1\nFROM a:$A\nFROM b:$B\n", [["UndefinedArgInFrom", 3]]],
]);

table("UndefinedVar", [
  ["ENV uses an unknown var", "FROM scratch\nENV PATH=$PATH:$GOHOME/bin\n", [["UndefinedVar", 2]]],
  ["declared by ARG", "FROM a\nARG V=1\nCOPY $V /x\n", []],
  ["declared by ENV", "FROM a\nENV D=/app\nWORKDIR $D\n", []],
  ["global ARG", "ARG D=/app\nFROM a\nARG D\nWORKDIR $D\n", []],
  ["PATH and proxy args", "FROM a\nENV PATH=/x:$PATH P=$http_proxy Q=$NO_PROXY\n", []],
  ["COPY source", "FROM a\nCOPY $SRC /dst\n", [["UndefinedVar", 2]]],
  ["COPY --chown", "FROM a\nCOPY --chown=$OWNER a /b\n", [["UndefinedVar", 2]]],
  ["ADD", "FROM a\nADD ${URL} /x\n", [["UndefinedVar", 2]]],
  ["WORKDIR", "FROM a\nWORKDIR /$DIR\n", [["UndefinedVar", 2]]],
  ["LABEL", 'FROM a\nLABEL v="$VERSION"\n', [["UndefinedVar", 2]]],
  ["USER", "FROM a\nUSER $UID\n", [["UndefinedVar", 2]]],
  ["EXPOSE", "FROM a\nEXPOSE $PORT\n", [["UndefinedVar", 2]]],
  ["VOLUME", "FROM a\nVOLUME $DATA\n", [["UndefinedVar", 2]]],
  ["STOPSIGNAL", "FROM a\nSTOPSIGNAL $SIG\n", [["UndefinedVar", 2]]],
  ["RUN is the shell's business", "FROM a\nRUN echo $NOPE\n", []],
  ["CMD is not expanded", 'FROM a\nCMD ["echo", "$NOPE"]\n', []],
  ["single quotes do not expand", "FROM a\nLABEL a='$NOPE'\n", []],
  ["escaped dollar", "FROM a\nLABEL a=\\$NOPE\n", []],
  ["with a fallback", "FROM a\nWORKDIR ${DIR:-/app}\n", []],
  ["ENV of the parent stage", "FROM a AS base\nENV D=/x\nFROM base\nWORKDIR $D\n", []],
  ["ENV of another stage does not count", "FROM a AS base\nENV D=/x\nFROM a\nWORKDIR $D\n", [["UndefinedVar", 4]]],
  ["declared later in the stage (may come from the base image)", 'FROM a\nENV JAVA_OPTS="$JAVA_OPTS -Xmx1g"\n', []],
  ["one warning per name and instruction", "FROM a\nCOPY $X $X /d\n", [["UndefinedVar", 2]]],
]);

table("WorkdirRelativePath", [
  ["relative first", "FROM a\nWORKDIR app\n", [["WorkdirRelativePath", 2]]],
  ["absolute first", "FROM a\nWORKDIR /app\nWORKDIR src\n", []],
  [
    "each relative one before an absolute one",
    "FROM a\nWORKDIR a\nWORKDIR b\nWORKDIR /c\nWORKDIR d\n",
    [
      ["WorkdirRelativePath", 2],
      ["WorkdirRelativePath", 3],
    ],
  ],
  ["absolute via a variable", "FROM a\nENV D=/app\nWORKDIR $D\nWORKDIR src\n", []],
  ["unknown variable cannot be judged", "FROM a\nWORKDIR $HOME/app\n", []],
  ["absolute WORKDIR in the parent stage", "FROM a AS base\nWORKDIR /app\nFROM base\nWORKDIR src\n", []],
  ["other stages do not count", "FROM a AS base\nWORKDIR /app\nFROM a\nWORKDIR src\n", [["WorkdirRelativePath", 4]]],
]);

table("LegacyKeyValueFormat", [
  ["ENV key value", "FROM a\nENV FOO bar\n", [["LegacyKeyValueFormat", 2]]],
  ["ENV key value with =", "FROM a\nENV FOO bar=baz\n", [["LegacyKeyValueFormat", 2]]],
  ["LABEL key value", "FROM a\nLABEL maintainer me\n", [["LegacyKeyValueFormat", 2]]],
  ["ENV key=value", 'FROM a\nENV FOO=bar BAZ="a b"\n', []],
  ["quoted key=value", 'FROM a\nLABEL "com.example.x"="y"\n', []],
  ["after a continuation", "FROM a\nENV \\\n  FOO=bar\n", []],
  ["legacy after a continuation", "FROM a\nENV \\\n  FOO bar\n", [["LegacyKeyValueFormat", 2]]],
]);

table("MultipleInstructionsDisallowed", [
  ["two CMDs", 'FROM a\nCMD ["a"]\nCMD ["b"]\n', [["MultipleInstructionsDisallowed", 2]]],
  [
    "three ENTRYPOINTs",
    'FROM a\nENTRYPOINT ["a"]\nENTRYPOINT ["b"]\nENTRYPOINT ["c"]\n',
    [
      ["MultipleInstructionsDisallowed", 2],
      ["MultipleInstructionsDisallowed", 3],
    ],
  ],
  ["two HEALTHCHECKs", "FROM a\nHEALTHCHECK NONE\nHEALTHCHECK CMD true\n", [["MultipleInstructionsDisallowed", 2]]],
  ["one per stage", 'FROM a\nCMD ["a"]\nFROM b\nCMD ["b"]\n', []],
  ["CMD and ENTRYPOINT together", 'FROM a\nENTRYPOINT ["a"]\nCMD ["b"]\n', []],
]);

table("SecretsUsedInArgOrEnv", [
  ["ARG password", "FROM a\nARG DB_PASSWORD\n", [["SecretsUsedInArgOrEnv", 2]]],
  ["ENV token", "FROM a\nENV GITHUB_TOKEN=x\n", [["SecretsUsedInArgOrEnv", 2]]],
  ["global ARG", "ARG API_KEY\nFROM a\n", [["SecretsUsedInArgOrEnv", 1]]],
  [
    "auth / secret / passwd / apikey / credentials",
    "FROM a\nARG AUTH SECRET_X MY_PASSWD APIKEY AWS_CREDENTIALS\n",
    [1, 2, 3, 4, 5].map(() => ["SecretsUsedInArgOrEnv", 2] as [string, number]),
  ],
  ["allow-listed public", "FROM a\nARG PUBLIC_KEY\n", []],
  ["token only as a whole word", "FROM a\nARG TOKENIZER KEYBOARD MONKEY AUTHOR\n", []],
  ["ordinary names", "FROM a\nENV VERSION=1 HOME=/root\n", []],
]);

table("ExposeProtoCasing", [
  ["upper-case protocol", "FROM a\nEXPOSE 80/TCP\n", [["ExposeProtoCasing", 2]]],
  ["lower-case protocol", "FROM a\nEXPOSE 80/tcp 53/udp 8080\n", []],
]);

table("ExposeInvalidFormat", [
  ["IP and host port", "FROM a\nEXPOSE 127.0.0.1:80:80\n", [["ExposeInvalidFormat", 2]]],
  ["host port", "FROM a\nEXPOSE 8080:80/tcp\n", [["ExposeInvalidFormat", 2]]],
  ["plain ports and ranges", "FROM a\nEXPOSE 80 8000-8010/tcp\n", []],
]);

table("NoEmptyContinuation", [
  ["empty line inside a continuation", "FROM a\nRUN echo \\\n\n  done\n", [["NoEmptyContinuation", 3]]],
  ["comment inside a continuation", "FROM a\nRUN echo \\\n# c\n  done\n", []],
]);

table("ConsistentInstructionCasing", [
  ["one lower-case among upper-case", "FROM a\nrun echo\nRUN echo\n", [["ConsistentInstructionCasing", 2]]],
  ["one upper-case among lower-case", "from a\nRUN echo\nrun echo\n", [["ConsistentInstructionCasing", 2]]],
  ["mixed-case word", "FROM a\nRun echo\n", [["ConsistentInstructionCasing", 2]]],
  ["tie goes to upper case", "FROM a\nrun echo\n", [["ConsistentInstructionCasing", 2]]],
  ["all lower-case", "from a\nrun echo\n", []],
  ["all upper-case", "FROM a\nRUN echo\n", []],
]);

describe("messages match BuildKit's", () => {
  it.each([
    ["StageNameCasing", "FROM a AS Build\n", "Stage name 'Build' should be lowercase"],
    ["FromAsCasing", "FROM a as b\n", "'as' and 'FROM' keywords' casing do not match"],
    ["DuplicateStageName", "FROM a AS b\nFROM a AS b\n", 'Duplicate stage name "b", stage names should be unique'],
    ["ReservedStageName", "FROM a AS scratch\n", 'Stage name should not use the same name as reserved stage "scratch"'],
    ["JSONArgsRecommended", "FROM a\nCMD x\n", "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals"],
    ["MaintainerDeprecated", "FROM a\nMAINTAINER x\n", "Maintainer instruction is deprecated in favor of using label"],
    ["UndefinedArgInFrom", "FROM a:$V\n", "FROM argument 'V' is not declared"],
    ["UndefinedArgInFrom", "ARG VARIANT=x\nFROM a:$VARIANTS\n", "FROM argument 'VARIANTS' is not declared (did you mean VARIANT?)"],
    ["UndefinedVar", "FROM a\nCOPY $SRC /x\n", "Usage of undefined variable '$SRC'"],
    ["UndefinedVar", "FROM a\nARG VERSION=1\nLABEL v=$VERSON\n", "Usage of undefined variable '$VERSON' (did you mean $VERSION?)"],
    ["WorkdirRelativePath", "FROM a\nWORKDIR app\n", 'Relative workdir "app" can have unexpected results if the base image changes'],
    ["LegacyKeyValueFormat", "FROM a\nENV A b\n", '"ENV key=value" should be used instead of legacy "ENV key value" format'],
    [
      "MultipleInstructionsDisallowed",
      'FROM a\nCMD ["a"]\nCMD ["b"]\n',
      "Multiple CMD instructions should not be used in the same stage because only the last one will be used",
    ],
    ["SecretsUsedInArgOrEnv", "FROM a\nARG GITHUB_TOKEN\n", 'Do not use ARG or ENV instructions for sensitive data (ARG "GITHUB_TOKEN")'],
    ["ExposeProtoCasing", "FROM a\nEXPOSE 80/TcP\n", "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase"],
    ["ExposeInvalidFormat", "FROM a\nEXPOSE 0.0.0.0:80:80\n", "EXPOSE instruction should not define an IP address or host-port mapping, found '0.0.0.0:80:80'"],
    ["NoEmptyContinuation", "FROM a\nRUN a \\\n\n b\n", "Empty continuation line"],
    ["ConsistentInstructionCasing", "FROM a\nrun x\nRUN y\n", "Command 'run' should match the case of the command majority (uppercase)"],
  ])("%s", (rule, text, message) => {
    expect(messages(text, rule)).toEqual([message]);
  });
});

describe("check directive", () => {
  const dockerfile = "FROM a as b\nMAINTAINER x\nCMD x\n";
  it("runs every rule by default", () => {
    expect(found(dockerfile).map((w) => w[0])).toEqual(["FromAsCasing", "MaintainerDeprecated", "JSONArgsRecommended"]);
    expect(check(dockerfile).errorOnWarnings).toBe(false);
  });
  it("skips the named rules", () => {
    expect(found(`# check=skip=FromAsCasing,JSONArgsRecommended\n${dockerfile}`)).toEqual([["MaintainerDeprecated", 3]]);
    expect(found(`# check=skip= FromAsCasing , MaintainerDeprecated \n${dockerfile}`)).toEqual([["JSONArgsRecommended", 4]]);
  });
  it("skip=all skips everything", () => {
    expect(found(`# check=skip=all\n${dockerfile}`)).toEqual([]);
  });
  it("error=true asks the caller to fail", () => {
    const r = check(`# check=skip=FromAsCasing;error=true\n${dockerfile}`);
    expect(r.errorOnWarnings).toBe(true);
    expect(r.warnings.map((w) => w.rule)).toEqual(["MaintainerDeprecated", "JSONArgsRecommended"]);
    expect(check(`# check=error=false\n${dockerfile}`).errorOnWarnings).toBe(false);
  });
  it("opts.checkDirective and BUILDKIT_DOCKERFILE_CHECK override the directive", () => {
    expect(found(`# check=skip=all\n${dockerfile}`, undefined, { checkDirective: "skip=MaintainerDeprecated,JSONArgsRecommended" })).toEqual([
      ["FromAsCasing", 2],
    ]);
    expect(found(`# check=skip=all\n${dockerfile}`, undefined, { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: "error=true" } })).toHaveLength(3);
    expect(check(dockerfile, { checkDirective: "error=true" }).errorOnWarnings).toBe(true);
  });
  it.each([
    ["no equals sign", "skipall", 'invalid check option "skipall"'],
    ["unknown key", "ignore=FromAsCasing", 'invalid check option "ignore"'],
    ["bad boolean", "error=maybe", 'failed to parse check option "error=maybe": invalid boolean "maybe"'],
  ])("a malformed directive (%s) is a warning, not a crash", (_n, directive, problem) => {
    const r = check(`# check=${directive}\n${dockerfile}`);
    const bad = r.warnings.filter((w) => w.rule === "InvalidCheckDirective");
    expect(bad).toHaveLength(1);
    expect(bad[0]?.message).toContain(problem);
    // The rest of the checks still run.
    expect(r.warnings.filter((w) => w.rule !== "InvalidCheckDirective")).toHaveLength(3);
  });
  it("keeps the valid parts of a partly malformed directive", () => {
    const r = check(`# check=skip=all;error=maybe\n${dockerfile}`);
    expect(r.warnings.map((w) => w.rule)).toEqual(["InvalidCheckDirective"]);
  });
  it("parses like BuildKit's ParseLintOptions", () => {
    const { config, problems } = parseCheckDirective(" skip=A, B ;error=TRUE ");
    expect([...config.skip]).toEqual(["A", "B"]);
    expect(config.error).toBe(true);
    expect(config.skipAll).toBe(false);
    expect(problems).toEqual([]);
    expect(parseCheckDirective(undefined).config).toEqual({ skipAll: false, skip: new Set(), error: false });
  });
});

describe("positions and formatting", () => {
  it("reports the file and the first physical line of the instruction", () => {
    const w = check("# syntax=docker/dockerfile:1\n\nFROM a\n\nRUN true \\\n  && true\nCMD echo \\\n  hi\n").warnings;
    expect(w.map((x) => [x.rule, x.range?.file, x.range?.start.line])).toEqual([["JSONArgsRecommended", "Dockerfile", 7]]);
  });
  it("sorts warnings by position", () => {
    const lines = found("FROM a as B\nCMD x\nCMD y\nMAINTAINER m\n").map((w) => w[1]);
    expect(lines).toEqual([...lines].sort((a, b) => (a ?? 0) - (b ?? 0)));
  });
  it("builds BuildKit's URLs", () => {
    expect(ruleUrl("StageNameCasing")).toBe("https://docs.docker.com/go/dockerfile/rule/stage-name-casing/");
    expect(ruleUrl("JSONArgsRecommended")).toBe("https://docs.docker.com/go/dockerfile/rule/json-args-recommended/");
    expect(ruleUrl("SecretsUsedInArgOrEnv")).toBe("https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/");
    expect(ruleUrl("UndefinedArgInFrom")).toBe("https://docs.docker.com/go/dockerfile/rule/undefined-arg-in-from/");
  });
  it("formats a warning like docker build --check", () => {
    const [w] = check("FROM a as b\n").warnings;
    expect(w && formatCheckWarning(w)).toBe(
      "WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/\n'as' and 'FROM' keywords' casing do not match\nDockerfile:1",
    );
  });
  it("honours the backtick escape directive", () => {
    expect(found("# escape=`\nFROM a\nLABEL a=`$NOPE b=$NOPE2\n", ["UndefinedVar"])).toEqual([["UndefinedVar", 3]]);
  });
});

describe("hand-built instructions", () => {
  // The checks need nothing from the parser beyond the ParsedDockerfile contract.
  const instr = (keyword: Keyword, args: string[], line: number, original: string, json = false): Instruction => ({
    keyword,
    flags: [],
    args,
    json,
    heredocs: [],
    original,
    range: { file: "x/Dockerfile", start: { line, column: 1 }, end: { line, column: original.length + 1 } },
  });
  it("works on a ParsedDockerfile built by hand", () => {
    const parsed: ParsedDockerfile = {
      file: "x/Dockerfile",
      directives: { escape: "\\" },
      instructions: [instr("FROM", ["alpine", "AS", "Base"], 1, "FROM alpine AS Base"), instr("ENV", ["A", "b"], 2, "env A b")],
      warnings: [],
    };
    expect(runChecks(parsed).warnings.map((w) => [w.rule, w.range?.file, w.range?.start.line])).toEqual([
      ["StageNameCasing", "x/Dockerfile", 1],
      ["ConsistentInstructionCasing", "x/Dockerfile", 2],
      ["LegacyKeyValueFormat", "x/Dockerfile", 2],
    ]);
  });
});

describe("fixtures/checks", () => {
  // Each fixture directory holds a Dockerfile and expected.json: the [rule, line] pairs it must produce.
  const root = join(import.meta.dirname, "../../fixtures/checks");
  const cases = readdirSync(root);
  it.each(cases)("%s", (name) => {
    const dir = join(root, name);
    const text = readFileSync(join(dir, "Dockerfile"), "utf8");
    const expected = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")) as unknown;
    expect(found(text)).toEqual(expected);
  });
});

describe("tsbuild check", () => {
  // The command, run in-process on the fixtures with captured output.
  async function runCheck(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const { checkCommand } = await import("../../src/cli/commands/check.js");
    const out: string[] = [];
    const err: string[] = [];
    const sink = (to: string[]) => new Writable({ write: (chunk: Buffer, _enc, cb) => (to.push(chunk.toString()), cb()) });
    const io: CliIO = {
      stdout: sink(out),
      stderr: sink(err),
      isTTY: false,
      stdin: Readable.from([]),
      stdinIsTTY: false,
      stdoutIsTTY: false,
      cwd: join(import.meta.dirname, "../../fixtures/checks"),
      env: {},
    };
    const code = await checkCommand.run({ argv, io, signal: new AbortController().signal });
    return { code: typeof code === "number" ? code : 0, stdout: out.join(""), stderr: err.join("") };
  }

  it("prints each warning with its location and a count", async () => {
    const r = await runCheck(["many"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/\n'as' and 'FROM' keywords' casing do not match\nmany/Dockerfile:2\n",
    );
    expect(r.stdout).toContain("> 2 | FROM node:20${VARIANT} as Deps\n");
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("Check complete, 14 warnings have been found!");
  });
  it("reports a clean Dockerfile", async () => {
    const r = await runCheck(["-f", "clean/Dockerfile"]);
    expect(r).toEqual({ code: 0, stdout: "Check complete, no warnings found.\n", stderr: "" });
  });
  it("prints JSON with --format json", async () => {
    const r = await runCheck(["--format", "json", "many"]);
    const json = JSON.parse(r.stdout) as { warnings: { rule: string; range: { start: { line: number } } | null }[]; errorOnWarnings: boolean };
    expect(json.errorOnWarnings).toBe(false);
    expect(json.warnings.map((w) => [w.rule, w.range?.start.line])).toEqual(
      JSON.parse(readFileSync(join(import.meta.dirname, "../../fixtures/checks/many/expected.json"), "utf8")),
    );
  });
  it("exits 1 when check=error=true and there are warnings", async () => {
    const r = await runCheck(["error-on-warnings"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("Check complete, 1 warning has been found!");
    expect(r.stderr).toContain("check=error=true");
  });
  it("BUILDKIT_DOCKERFILE_CHECK from --build-arg overrides the directive", async () => {
    const r = await runCheck(["--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=JSONArgsRecommended", "error-on-warnings"]);
    expect(r).toEqual({ code: 0, stdout: "Check complete, no warnings found.\n", stderr: "" });
  });
  it("rejects a bad --format and a missing Dockerfile", async () => {
    await expect(runCheck(["--format", "xml", "many"])).rejects.toMatchObject({ code: "BAD_FLAG_VALUE" });
    await expect(runCheck(["nowhere"])).rejects.toMatchObject({ code: "DOCKERFILE_NOT_FOUND" });
  });
});
