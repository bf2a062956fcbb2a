// splitStages, findStage and the plan's stage edges, table-driven.
import { describe, expect, it } from "vitest";
import { parseDockerfile } from "../../src/frontend/parse.js";
import { findStage, splitStages } from "../../src/frontend/stages.js";
import { planBuild, stageDependencies } from "../../src/frontend/plan.js";
import { TsbuildError } from "../../src/errors.js";

const staged = (text: string) => splitStages(parseDockerfile(text));
const plan = (text: string) => planBuild(parseDockerfile(text), { platform: { os: "linux", architecture: "amd64" } });
const deps = (text: string) => Object.fromEntries([...stageDependencies(plan(text))].map(([k, v]) => [k, [...v].sort()]));
function code(text: string): [string, number | undefined, number | undefined] {
  try {
    plan(text);
  } catch (e) {
    if (!(e instanceof TsbuildError)) throw e;
    return [e.code, e.range?.start.line, e.range?.start.column];
  }
  throw new Error("expected an error");
}

describe("splitStages", () => {
  it("collects global ARGs, lower-cases names, keeps base and platform", () => {
    const s = staged("ARG A\nARG B=1\nFROM --platform=$P img:1 AS Build\nRUN x\nFROM build\n");
    expect(s.globalArgs.map((i) => i.args)).toEqual([["A"], ["B=1"]]);
    expect(s.stages.map((x) => [x.index, x.name, x.base, x.platform, x.instructions.length, x.from.keyword])).toEqual([
      [0, "build", "img:1", "$P", 1, "FROM"],
      [1, undefined, "build", undefined, 0, "FROM"],
    ]);
  });

  const errors: [string, [string, number, number]][] = [
    ["RUN x\nFROM a", ["NO_FROM", 1, 1]],
    ["ARG A\nENV B=1\nFROM a", ["NO_FROM", 2, 1]],
    ["FROM a AS x\nFROM b AS X", ["DUPLICATE_STAGE", 2, 11]],
    ["FROM a AS scratch", ["RESERVED_STAGE_NAME", 1, 11]],
    ["FROM a AS context", ["RESERVED_STAGE_NAME", 1, 11]],
    ["FROM a AS 1x", ["INVALID_STAGE_NAME", 1, 11]],
    ["FROM a AS x\nRUN --mount=type=bind,from=x true", ["CIRCULAR_DEPENDENCY", 2, 5]],
    ["FROM a\nCOPY --from=0 a b", ["CIRCULAR_DEPENDENCY", 2, 6]],
    ["FROM a AS x\nCOPY --from=y a b\nFROM b AS y\nCOPY --from=x c d", ["CIRCULAR_DEPENDENCY", 4, 6]],
  ];
  for (const [text, want] of errors) it(`${want[0]}: ${text.replace(/\n/g, "\\n")}`, () => expect(code(text)).toEqual(want));
});

describe("findStage", () => {
  const s = staged("FROM a AS One\nFROM b\n");
  it("finds by name case-insensitively and by index", () => {
    expect(findStage(s, "ONE")?.index).toBe(0);
    expect(findStage(s, "1")?.index).toBe(1);
    expect(findStage(s, "2")).toBeUndefined();
    expect(findStage(s, "nope")).toBeUndefined();
  });
});

describe("stageDependencies", () => {
  it("has edges for FROM <stage>, COPY --from, RUN --mount from=, by name or index", () => {
    expect(deps("FROM a AS x\nFROM x AS y\nFROM b\nCOPY --from=0 a b\nRUN --mount=type=bind,from=y,target=/y true\nCOPY --from=alpine a b\n")).toEqual({
      0: [],
      1: [0],
      2: [0, 1],
    });
  });
  it("a later stage is a stage for --from, an image for FROM", () => {
    expect(deps("FROM a AS x\nCOPY --from=y a b\nFROM z AS z\nFROM b AS y\n")).toEqual({ 0: [2], 1: [], 2: [] });
    expect(deps("FROM a AS x\nFROM y AS z\nFROM b AS y\n")).toEqual({ 0: [], 1: [], 2: [] });
  });
});
