// --call=outline and --call=targets, pure: which comments describe a stage or an ARG (BuildKit's getComment and
// PrevComment rules), which args/secrets/ssh ids a target reaches through the plan, and buildx's exact text and JSON.
import { describe, expect, test } from "vitest";
import { TsbuildError } from "../../src/errors.js";
import { parseDockerfile } from "../../src/frontend/parse.js";
import { describedBy, listTargets, outlineBuild, type Outline } from "../../src/frontend/outline.js";
import { formatOutline, formatTargets, goJsonIndent, outlineJson, tabwrite, targetsJson } from "../../src/frontend/outline-format.js";
import { splitStages } from "../../src/frontend/stages.js";
import { stageHint } from "../../src/frontend/plan.js";

const platform = { os: "linux", architecture: "amd64" };
const parse = (text: string) => parseDockerfile(text, { file: "Dockerfile" });
const outline = (text: string, opts: { target?: string; buildArgs?: Record<string, string> } = {}): Outline => outlineBuild(parse(text), { platform, ...opts });
/** name=value (description) @line, for compact expectations. */
const args = (o: Outline) => o.args.map((a) => `${a.name}=${a.value ?? "<none>"}${a.description ? ` (${a.description})` : ""} @${a.range.start.line}`);
const fails = (fn: () => unknown): TsbuildError => {
  try {
    fn();
  } catch (e) {
    if (e instanceof TsbuildError) return e;
    throw e;
  }
  throw new Error("expected an error");
};

describe("description comments", () => {
  test.each([
    ["a comment led by the name", ["base is the base"], "base", "is the base"],
    ["the first matching line of several", ["hello", "base first", "base second"], "base", "first"],
    ["no comment leads with the name", ["the base"], "base", ""],
    ["the name alone (no space after it)", ["base"], "base", ""],
    ["case matters (stage names are lower case)", ["Base is it"], "base", ""],
    ["an unnamed stage has none", ["base is it"], undefined, ""],
    ["extra spaces after the name are kept", ["VERSION   the version"], "VERSION", "  the version"],
  ])("%s", (_what, comments, name, expected) => {
    expect(describedBy(comments, name)).toBe(expected);
  });

  test.each([
    ["directly above", "# a is A\nFROM scratch AS a\n", ["a is A"]],
    ["a blank line does not end the run (BuildKit's parser)", "# a is A\n\nFROM scratch AS a\n", ["a is A"]],
    ["an empty # line does", "# a is A\n#\nFROM scratch AS a\n", []],
    ["several lines, in order", "# one\n  # two\nFROM scratch AS a\n", ["one", "# two"]],
    ["directives count, as in BuildKit", "# syntax=docker/dockerfile:1\n# a is A\nFROM scratch AS a\n", ["syntax=docker/dockerfile:1", "a is A"]],
    ["comments above the previous instruction are not carried over", "# x\nARG X\nFROM scratch AS a\n", []],
    ["comments inside a continuation belong to no one", "FROM scratch\nRUN a \\\n# inside\n  b\nFROM scratch AS a\n", []],
  ])("the parser keeps the comments %s", (_what, text, expected) => {
    const last = parse(text).instructions.at(-1);
    expect(last?.comments ?? []).toEqual(expected);
  });

  test("parse --json's shape has no comments field (it is unchanged)", async () => {
    const { parseResultToJson } = await import("../../src/frontend/parse-json.js");
    const json = parseResultToJson(parse("# a is A\nFROM scratch AS a\n")) as { instructions: Record<string, unknown>[] };
    expect(Object.keys(json.instructions[0] as object)).not.toContain("comments");
  });
});

describe("targets", () => {
  test("every stage, in order, the last as default, with descriptions, bases and platforms as written", () => {
    const t = listTargets(
      parse("ARG B=busybox\n# base is the base\nFROM --platform=$BUILDPLATFORM ${B} AS base\nFROM base\n# out is it\nFROM scratch AS out\n"),
    );
    expect(t.map((x) => [x.name, x.default, x.description, x.base, x.platform, x.range.start.line])).toEqual([
      ["base", false, "is the base", "${B}", "$BUILDPLATFORM", 3],
      [undefined, false, undefined, "base", undefined, 4],
      ["out", true, "is it", "scratch", undefined, 6],
    ]);
  });

  test.each([
    [
      "named stages, the default marked",
      "# build compiles\nFROM scratch AS build\nFROM scratch AS release\n",
      "TARGET            DESCRIPTION\nbuild             compiles\nrelease (default) \n",
    ],
    ["an unnamed default", "FROM scratch AS a\nFROM scratch\n", "TARGET    DESCRIPTION\na         \n(default) \n"],
    [
      "an unnamed stage that is not the default has an empty name",
      "FROM scratch\nFROM scratch AS b\n",
      "TARGET      DESCRIPTION\n            \nb (default) \n",
    ],
  ])("text: %s (BuildKit's PrintTargets)", (_what, text, expected) => {
    expect(formatTargets(listTargets(parse(text)))).toBe(expected);
  });

  test("JSON is BuildKit's targets.List: omitempty fields left out, location by lines, the source in base64", () => {
    const text = "# a is A\nFROM scratch AS a\nFROM a\n";
    expect(targetsJson(listTargets(parse(text)), text)).toEqual({
      targets: [
        { name: "a", description: "is A", base: "scratch", location: { ranges: [{ start: { line: 2 }, end: { line: 2 } }] } },
        { default: true, base: "a", location: { ranges: [{ start: { line: 3 }, end: { line: 3 } }] } },
      ],
      sources: [Buffer.from(text).toString("base64")],
    });
  });
});

describe("outline", () => {
  const file = [
    "# GO sets the Go version", // 1
    "ARG GO=1.22", // 2
    "ARG REG=docker.io", // 3
    "ARG BASE=${REG}/busybox", // 4
    "ARG UNUSED_GLOBAL=x", // 5
    "# base is the base", // 6
    "FROM $BASE AS base", // 7
    "# VERSION is stamped in", // 8
    "ARG VERSION=dev", // 9
    "RUN --mount=type=secret,id=npmrc,required echo", // 10
    "FROM scratch AS tools", // 11
    "ARG TOOLS=1", // 12
    "RUN --mount=type=secret,target=/run/secrets/token true", // 13
    "FROM base AS build", // 14
    "ARG GO", // 15
    "ARG LOCAL", // 16
    "RUN --mount=type=ssh --mount=type=ssh,id=gh,required=true --mount=type=bind,from=tools,target=/t true", // 17
    "FROM scratch AS unrelated", // 18
    "ARG NOT_REACHED=1", // 19
    "RUN --mount=type=secret,id=other true", // 20
    "# release ships", // 21
    "FROM scratch AS release", // 22
    "COPY --from=build /x /x", // 23
    "ARG TARGETARCH", // 24
  ].join("\n");

  test.each([
    [
      "the default target: what it reads through COPY --from, FROM and --mount from=, sorted by line; not what it does not reach",
      {},
      {
        name: "release",
        description: "ships",
        args: [
          "GO=1.22 (sets the Go version) @2",
          "REG=docker.io @3",
          "BASE=docker.io/busybox @4",
          "VERSION=dev (is stamped in) @9",
          "TOOLS=1 @12",
          "LOCAL=<none> @16",
        ],
        secrets: ["npmrc required @10", "token @13"],
        ssh: ["default @17", "gh required @17"],
      },
    ],
    [
      "a --target: only its own stages",
      { target: "base" },
      {
        name: "base",
        description: "is the base",
        args: ["REG=docker.io @3", "BASE=docker.io/busybox @4", "VERSION=dev (is stamped in) @9"],
        secrets: ["npmrc required @10"],
        ssh: [],
      },
    ],
    [
      "--build-arg values; a stage ARG given one is the stage's definition, not the global's",
      { target: "build", buildArgs: { GO: "1.23", VERSION: "2" } },
      {
        name: "build",
        args: ["REG=docker.io @3", "BASE=docker.io/busybox @4", "VERSION=2 (is stamped in) @9", "TOOLS=1 @12", "GO=1.23 @15", "LOCAL=<none> @16"],
        secrets: ["npmrc required @10", "token @13"],
        ssh: ["default @17", "gh required @17"],
      },
    ],
  ])("%s", (_what, opts, expected) => {
    const o = outline(file, opts);
    expect({
      name: o.name,
      ...(o.description ? { description: o.description } : {}),
      args: args(o),
      secrets: o.secrets.map((s) => `${s.name}${s.required ? " required" : ""} @${s.range.start.line}`),
      ssh: o.ssh.map((s) => `${s.name}${s.required ? " required" : ""} @${s.range.start.line}`),
    }).toEqual(expected);
  });

  test.each([
    ["a global used only through another's default is used (BuildKit's deps)", "ARG A=1\nARG B=x$A\nFROM img:$B\n", {}, ["A=1 @1", "B=x1 @2"]],
    ["a global no FROM uses and no stage declares is left out", "ARG A=1\nFROM scratch\n", {}, []],
    ["predefined platform args are not build args to list", "FROM scratch\nARG TARGETARCH\nARG BUILDPLATFORM\n", {}, []],
    ["a stage ARG's default expands with the stage's ARGs and ENV", "FROM scratch\nARG A=1\nENV E=$A-e\nARG B=${E}-b\n", {}, ["A=1 @2", "B=1-e-b @4"]],
    ["ARG A B on one line keeps declaration order", "FROM scratch\nARG Z=1 A=2\n", {}, ["Z=1 @2", "A=2 @2"]],
    ["the target's own definition wins over a stage it reads", "FROM scratch AS a\nARG V=a\nFROM a\nARG V=b\n", {}, ["V=b @4"]],
    ["a build arg replaces a global's default", "ARG B=busybox\nFROM $B\n", { buildArgs: { B: "alpine" } }, ["B=alpine @1"]],
  ])("%s", (_what, text, opts, expected) => {
    expect(args(outline(text, opts))).toEqual(expected);
  });

  test("errors are the build's, at the same place: an empty FROM names its ARG; an unknown target suggests a stage", () => {
    const empty = fails(() => outline("ARG BASE\nFROM ${BASE}:1\n"));
    expect(empty.code).toBe("EMPTY_BASE");
    expect(empty.message).toBe(
      'FROM ${BASE}:1: base name ":1" is not an image name because build arg BASE has no value; give it a default (ARG BASE=…) or --build-arg BASE=…',
    );
    expect([empty.range?.start.line, empty.range?.start.column]).toEqual([2, 6]);
    const typo = fails(() => outline("FROM scratch AS build\nFROM scratch AS test\n", { target: "biuld" }));
    expect(typo.code).toBe("UNKNOWN_TARGET");
    expect(typo.hint).toBe("did you mean build? (stages: build, test)");
  });

  test("text: buildx's tables (Go tabwriter), each section followed by a blank line; nothing for what is empty", () => {
    const text =
      "ARG V=1\n# app is what runs\nFROM scratch AS app\n# V is the version\nARG V\nRUN --mount=type=secret,id=token,required --mount=type=ssh true\n";
    expect(formatOutline(outline(text))).toBe(
      "TARGET:      app\nDESCRIPTION: is what runs\n\n" +
        "BUILD ARG   VALUE   DESCRIPTION\nV           1       \n\n" +
        "SECRET   REQUIRED\ntoken    true\n\n" +
        "SSH       REQUIRED\ndefault   \n\n",
    );
    expect(formatOutline(outline("FROM scratch\n"))).toBe("");
  });

  test("JSON is BuildKit's outline.Outline", () => {
    const text = "# a is A\nFROM scratch AS a\n# V is v\nARG V=1 W\nRUN --mount=type=secret,id=s true\n";
    expect(outlineJson(outline(text), text)).toEqual({
      name: "a",
      description: "is A",
      args: [
        { name: "V", description: "is v", value: "1", location: { ranges: [{ start: { line: 4 }, end: { line: 4 } }] } },
        { name: "W", location: { ranges: [{ start: { line: 4 }, end: { line: 4 } }] } },
      ],
      secrets: [{ name: "s", location: { ranges: [{ start: { line: 5 }, end: { line: 5 } }] } }],
      sources: [Buffer.from(text).toString("base64")],
    });
  });

  test("tabwrite pads every cell but the last by the widest in its column, counting characters; JSON escapes as Go does", () => {
    expect(
      tabwrite(
        [
          ["a", "b", "c"],
          ["ééé", "", "x"],
        ],
        2,
      ),
    ).toBe("a    b  c\nééé     x\n");
    expect(goJsonIndent({ a: "<&>" })).toBe('{\n  "a": "\\u003c\\u0026\\u003e"\n}');
  });
});

describe("a stage name taken as an image", () => {
  const staged = splitStages(parse("FROM scratch AS build\nFROM biuld AS test\nFROM scratch AS later\n"));
  test.each([
    ["a close --from name", "biuld", undefined, /^did you mean build\? no stage is named "biuld"/],
    ["a FROM naming a stage defined later", "later", 1, /^did you mean the stage later\? FROM names only a stage defined above it/],
    ["nothing close", "alpine", undefined, undefined],
  ])("%s", (_what, ref, current, expected) => {
    const hint = stageHint(staged, ref, current === undefined ? undefined : staged.stages[current]);
    if (expected === undefined) expect(hint).toBeUndefined();
    else expect(hint).toMatch(expected);
  });
});
