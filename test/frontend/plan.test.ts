// The build plan, pure: how FROM, COPY --from and RUN --mount from= resolve (BuildKit's rules), which stages a target
// needs and in what order, and the errors — the same ones check, parse and build report.
import { describe, expect, test } from "vitest";
import { TsbuildError } from "../../src/errors.js";
import { parseDockerfile } from "../../src/frontend/parse.js";
import { planBuild, type BuildPlan } from "../../src/frontend/plan.js";

const platform = { os: "linux", architecture: "amd64" };
const plan = (text: string, opts: { target?: string; buildArgs?: Record<string, string> } = {}): BuildPlan =>
  planBuild(parseDockerfile(text, { file: "Dockerfile" }), { platform, ...opts });
const fails = (text: string, opts: { target?: string; buildArgs?: Record<string, string> } = {}): TsbuildError => {
  try {
    plan(text, opts);
  } catch (e) {
    if (e instanceof TsbuildError) return e;
    throw e;
  }
  throw new Error("expected an error");
};

describe("stage references", () => {
  test("COPY --from may name a later stage; the target's stages come first, unused ones not at all", () => {
    const p = plan("FROM scratch AS one\nCOPY --from=two /x /y\nFROM scratch AS two\nFROM scratch AS unused\n", { target: "one" });
    expect(p.order).toEqual([1, 0]);
    expect(p.stages[0]?.edges).toEqual([{ index: 1, via: "--from", range: expect.anything() }]);
  });

  test("FROM names only an earlier stage by name; a later name or a number is an image", () => {
    const p = plan("FROM base AS a\nFROM a AS b\nFROM 0 AS c\n", { target: "b" });
    expect(p.stages[1]?.base).toEqual({ kind: "stage", index: 0 });
    expect(p.stages[2]?.base).toEqual({ kind: "image", name: "0" });
    expect(plan("FROM later AS a\nFROM scratch AS later\n", { target: "a" }).stages[0]?.base).toEqual({ kind: "image", name: "later" });
  });

  test("FROM expands global ARGs (build args win); scratch is scratch", () => {
    const p = plan("ARG BASE=alpine\nFROM $BASE AS a\nFROM scratch\n", { buildArgs: { BASE: "debian:12" } });
    expect(p.stages[0]).toMatchObject({ baseName: "debian:12", base: { kind: "image", name: "debian:12" } });
    expect(p.stages[1]?.base).toEqual({ kind: "scratch" });
    expect(p.usedBuildArgs).toEqual(new Set(["BASE"]));
  });

  test("--from by index, and by a name that is no stage (an image)", () => {
    const p = plan("FROM scratch\nFROM scratch\nCOPY --from=0 /a /\nCOPY --from=alpine:3 /b /\n");
    expect(p.stages[1]?.edges.map((e) => e.index)).toEqual([0]);
    expect([...(p.stages[1]?.copyFrom.values() ?? [])]).toEqual([
      { kind: "stage", index: 0 },
      { kind: "image", name: "alpine:3" },
    ]);
  });

  test("RUN --mount from=$ARG is resolved with the stage's ARGs, so the dependency is known before the stage runs", () => {
    const p = plan("FROM scratch AS a\nFROM scratch AS b\nARG S=a\nRUN --mount=type=bind,from=$S,target=/x true\n");
    expect(p.stages[1]?.edges.map((e) => [e.index, e.via])).toEqual([[0, "--mount from"]]);
    expect(p.order).toEqual([0, 1]);
  });

  test.each([
    [
      "a cycle through --from",
      "FROM scratch AS a\nCOPY --from=b /x /\nFROM scratch AS b\nCOPY --from=a /y /\n",
      "CIRCULAR_DEPENDENCY",
      /circular dependency detected on stage/,
    ],
    ["a stage mounting itself", "FROM scratch AS one\nRUN --mount=from=one,target=/x true\n", "CIRCULAR_DEPENDENCY", /stage: one/],
    ["--from=$VAR", "FROM scratch AS a\nARG S=a\nFROM scratch\nCOPY --from=$S /x /\n", "FROM_EXPANSION", /variable expansion is not supported for --from/],
    ["--from=7 with two stages", "FROM scratch\nFROM scratch\nCOPY --from=7 /x /\n", "UNKNOWN_STAGE", /no stage 7/],
    ["an unknown target", "FROM scratch AS a\n", "UNKNOWN_TARGET", /target stage "zzz"/],
    ["FROM with an empty ARG", "ARG B\nFROM $B\n", "EMPTY_BASE", /FROM \$B: base name is empty because build arg B has no value/],
  ])("%s is an error with a place", (_name, text, code, message) => {
    const e = fails(text, text.includes("AS a\n") && !text.includes("COPY") ? { target: "zzz" } : {});
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    if (code !== "UNKNOWN_TARGET") expect(e.range?.start.line).toBeGreaterThan(0);
  });

  test("a cycle in a stage the target does not need is still an error (as in BuildKit)", () => {
    expect(fails("FROM scratch AS a\nFROM scratch AS b\nCOPY --from=c /x /\nFROM scratch AS c\nCOPY --from=b /y /\n", { target: "a" }).code).toBe(
      "CIRCULAR_DEPENDENCY",
    );
  });
});

describe("decoded once", () => {
  test("every instruction of every stage is decoded by the plan; a bad flag in a stage the target does not need still fails, at its place", () => {
    const p = plan("FROM scratch AS a\nENV A=1\nFROM scratch\nCOPY --chmod=755 x /\n");
    expect([...(p.stages[1]?.typed.values() ?? [])].map((t) => t.kind)).toEqual(["COPY"]);
    const e = fails("FROM scratch AS unused\nRUN --network=bridge true\nFROM scratch\n");
    expect(e.code).toBe("BAD_FLAG_VALUE");
    expect(e.range?.start.line).toBe(2);
  });
});

describe("platforms", () => {
  const arm = { os: "linux", architecture: "arm64" };
  const planFor = (text: string, target = arm) => planBuild(parseDockerfile(text, { file: "Dockerfile" }), { platform: target, buildPlatform: platform });

  test("the predefined ARGs name the target and the build platform, as BuildKit sets them", () => {
    const p = planFor("FROM scratch\n", { os: "linux", architecture: "arm", variant: "v7" } as typeof arm);
    expect(Object.fromEntries([...p.globalArgs].filter(([k]) => k !== "TARGETSTAGE"))).toEqual({
      TARGETPLATFORM: "linux/arm/v7",
      TARGETOS: "linux",
      TARGETARCH: "arm",
      TARGETVARIANT: "v7",
      BUILDPLATFORM: "linux/amd64",
      BUILDOS: "linux",
      BUILDARCH: "amd64",
      BUILDVARIANT: "",
    });
    expect(planFor("FROM scratch\n", { os: "linux", architecture: "aarch64" }).globalArgs.get("TARGETPLATFORM")).toBe("linux/arm64");
  });

  test("FROM --platform expands with the global ARGs; a stage FROM a stage inherits its platform; others get none (the target's)", () => {
    const p = planFor(
      "ARG OTHER=linux/s390x\nFROM --platform=$BUILDPLATFORM scratch AS build\nFROM build AS more\nFROM --platform=$OTHER scratch AS s\nFROM scratch\n",
    );
    expect(p.stages.map((s) => s.platform)).toEqual([
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "s390x" },
      undefined,
    ]);
  });

  test("a FROM --platform that expands to no platform fails at the FROM line", () => {
    let err: unknown;
    try {
      planFor("FROM --platform=$NOPE scratch\n");
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "INVALID_PLATFORM", range: { start: { line: 1 } } });
  });
});

describe("named contexts", () => {
  const withContexts = (text: string) =>
    planBuild(parseDockerfile(text, { file: "Dockerfile" }), {
      platform,
      namedContexts: new Map([
        ["deps", { kind: "dir" as const }],
        ["Base", { kind: "image" as const, ref: "busybox:1" }],
      ]),
    });

  test("FROM and --from a context name resolve to it, before a stage of that name", () => {
    const p = withContexts("FROM scratch AS deps\nFROM deps\nCOPY --from=base /x /y\n");
    expect(p.stages[1]?.base).toEqual({ kind: "context", name: "deps" });
    expect([...(p.stages[1]?.copyFrom.values() ?? [])]).toEqual([{ kind: "image", name: "busybox:1" }]);
    expect(p.order).toEqual([1]);
  });

  test("a stage whose own name is a context is replaced by it: no edges, its instructions not planned to run", () => {
    const p = withContexts("FROM scratch AS other\nFROM other AS deps\nCOPY --from=other /x /y\n");
    expect(p.target.replacedBy).toBe("deps");
    expect(p.target.base).toEqual({ kind: "context", name: "deps" });
    expect(p.target.edges).toEqual([]);
    expect(p.order).toEqual([1]);
    expect(withContexts("FROM scratch AS base\nRUN x\n").target).toMatchObject({ replacedBy: "base", base: { kind: "image", name: "busybox:1" } });
  });
});
